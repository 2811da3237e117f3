"""Every order line with the category-choice model's prediction and its split, in batches of
lines; kept as it is while the model is (see shoplens.ml.reuse.is_current)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import is_current, model_versions, unchanged

    training = dbt.ref("category_training")
    if is_current(session, dbt.this, dbt.is_incremental, model_versions([training])):
        return unchanged(session, dbt.this)
    from shoplens.ml.build import category_lines, order_line_predictions

    return order_line_predictions(training.df(), category_lines(dbt.ref("fct_order_lines")))
