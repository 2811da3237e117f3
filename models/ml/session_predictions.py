"""Every modelled session scored by each purchase-intent model, with its split, in batches of
sessions; kept as it is while the models are (see shoplens.ml.reuse.is_current)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import is_current, model_versions, unchanged

    training = dbt.ref("intent_training")
    if is_current(session, dbt.this, dbt.is_incremental, model_versions([training])):
        return unchanged(session, dbt.this)
    from shoplens.ml.build import intent_rows, session_predictions
    from shoplens.ml.reuse import early_intent_columns

    columns = early_intent_columns(dbt.ref("feature_definitions"))
    early, sessions = dbt.ref("int_sessions_early_featurized"), dbt.ref("fct_sessions")
    return session_predictions(training.df(), intent_rows(early, sessions, columns))
