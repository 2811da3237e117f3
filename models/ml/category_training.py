"""Train the category-choice model once per build (see shoplens.ml.build)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import Settings, category_training

    return category_training(dbt.ref("fct_order_lines").df(), Settings.from_config(
        dbt.config.get("ml_seed"), dbt.config.get("ml_n_estimators"),
        dbt.config.get("ml_max_training_rows"), dbt.config.get("ml_n_jobs")))
