"""Fit the customer segmentation (K-Means, k by silhouette, named by the seed rule) and PCA."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import Settings, segment_training
    from shoplens.ml.segments import customer_behaviour

    customers = customer_behaviour(dbt.ref("fct_sessions").df())
    return segment_training(customers, dbt.ref("segment_naming_rules").df(),
                            Settings.from_config(
        dbt.config.get("ml_seed"), dbt.config.get("ml_n_estimators"),
        dbt.config.get("ml_max_training_rows"), dbt.config.get("ml_n_jobs")))
