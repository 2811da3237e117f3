"""Per-feature leakage screen of the session-study replication beside the early-intent set."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import is_current, model_versions, unchanged

    training = dbt.ref("intent_training")
    versions = model_versions([training], {"session_study_replication"})
    if is_current(session, dbt.this, dbt.is_incremental, versions, by_name=False):
        return unchanged(session, dbt.this)
    from shoplens.ml.artifacts import unpack

    return unpack(training.df(), "leakage")
