"""Every modelled session scored by each purchase-intent model, with its split."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import session_predictions

    return session_predictions(
        dbt.ref("intent_training").df(),
        dbt.ref("int_sessions_early_featurized").df(),
        dbt.ref("fct_sessions").df(),
    )
