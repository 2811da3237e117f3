"""Fit the customer segmentation (K-Means, k by silhouette, named by the seed rule) and PCA,
or keep them when nothing changed (see intent_training)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import Settings, segment_fingerprint, train_or_reuse

    settings = Settings.from_config(
        dbt.config.get("ml_seed"), dbt.config.get("ml_n_estimators"),
        dbt.config.get("ml_max_training_rows"), dbt.config.get("ml_n_jobs"),
        dbt.config.get("ml_force_retrain"))
    sessions, rules = dbt.ref("fct_sessions"), dbt.ref("segment_naming_rules")

    def train():
        from shoplens.ml.build import segment_training
        from shoplens.ml.segments import customer_behaviour

        return segment_training(customer_behaviour(sessions.df()), rules.df(), settings)

    fingerprint = segment_fingerprint(sessions, rules, settings)
    return train_or_reuse(session, dbt.this, dbt.is_incremental, fingerprint, settings, train)
