"""Every modelled session scored by each purchase-intent model, with its split; kept as it is
while the models are (see shoplens.ml.reuse.is_current)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import is_current, model_versions, unchanged

    training = dbt.ref("intent_training")
    if is_current(session, dbt.this, dbt.is_incremental, model_versions([training])):
        return unchanged(session, dbt.this)
    from shoplens.ml.build import session_predictions

    return session_predictions(
        training.df(),
        dbt.ref("int_sessions_early_featurized").df(),
        dbt.ref("fct_sessions").df(),
    )
