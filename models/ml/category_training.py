"""Train the category-choice model once per build (see shoplens.ml.build)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import Settings, category_lines, category_training

    lines = category_lines(dbt.ref("stg_shop__transactions").df(),
                           dbt.ref("stg_shop__customers").df())
    return category_training(lines, Settings.from_config(
        dbt.config.get("ml_seed"), dbt.config.get("ml_n_estimators"),
        dbt.config.get("ml_max_training_rows"), dbt.config.get("ml_n_jobs")))
