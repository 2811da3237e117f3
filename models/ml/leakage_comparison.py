"""Per-feature leakage screen of the session-study replication beside the early-intent set."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.artifacts import unpack

    return unpack(dbt.ref("intent_training").df(), "leakage")
