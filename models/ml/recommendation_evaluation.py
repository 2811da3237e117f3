"""Hit rate at 1 and 3 of the session recommender on a time hold-out, beside the baselines
(most popular category, the customer's most viewed category so far); re-evaluated when the
category model is retrained (see shoplens.ml.recommend.evaluate)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import Settings, is_current, model_versions, unchanged

    training = dbt.ref("category_training")
    if is_current(session, dbt.this, dbt.is_incremental, model_versions([training])):
        return unchanged(session, dbt.this)
    from shoplens.ml.recommend import customer_views, deployed, evaluate, evaluation_inputs

    settings = Settings.from_config(dbt.config.get("ml_settings"))
    _, version = deployed(training.df())
    rows, lines, seen = evaluation_inputs(
        dbt.ref("int_sessions_category_featurized"), dbt.ref("fct_order_lines"))
    views = customer_views(session, dbt.ref("int_events_sessionized"),
                           rows.drop_duplicates(["history_cut", "session_id"]))
    return evaluate(rows, lines, views, settings.forest(), settings.max_training_rows, version,
                    seen)
