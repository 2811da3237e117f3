"""Train the purchase-intent models: one row per model (see shoplens.ml.build).

Incremental: when the fingerprint of the training rows, parameters and code equals the one the
current models were trained on, nothing is returned and the table keeps them (no new registry
version); otherwise the new rows replace every row (unique_key "true").
"""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import Settings, intent_fingerprint, train_or_reuse

    settings = Settings.from_config(
        dbt.config.get("ml_seed"), dbt.config.get("ml_n_estimators"),
        dbt.config.get("ml_max_training_rows"), dbt.config.get("ml_n_jobs"),
        dbt.config.get("ml_force_retrain"))
    definitions = dbt.ref("feature_definitions").df()
    columns = definitions.loc[definitions["feature_set"] == "early_intent", "feature_columns"]
    columns = columns.iloc[0].split(",")
    early, sessions = dbt.ref("int_sessions_early_featurized"), dbt.ref("fct_sessions")

    def train():
        from shoplens.ml.build import intent_training

        return intent_training(early.df(), sessions.df(), columns, settings)

    fingerprint = intent_fingerprint(early, sessions, columns, settings)
    return train_or_reuse(session, dbt.this, dbt.is_incremental, fingerprint, settings, train)
