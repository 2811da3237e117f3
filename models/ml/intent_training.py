"""Train the purchase-intent models: one row per model (see shoplens.ml.build).

Incremental: when the fingerprint of the training rows, parameters and code equals the one the
current models were trained on, nothing is returned and the table keeps them (no new registry
version); otherwise the new rows replace every row (unique_key "true").
"""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import (Settings, early_intent_columns, intent_fingerprint,
                                   train_or_reuse)

    settings = Settings.from_config(dbt.config.get("ml_settings"))
    columns = early_intent_columns(dbt.ref("feature_definitions"))
    early, sessions = dbt.ref("int_sessions_early_featurized"), dbt.ref("fct_sessions")

    def train():
        from shoplens.ml.build import intent_rows, intent_training

        return intent_training(intent_rows(early, sessions, columns), columns, settings)

    fingerprint = intent_fingerprint(early, sessions, columns, settings)
    return train_or_reuse(session, dbt.this, dbt.is_incremental, fingerprint, settings, train)
