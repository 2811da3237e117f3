"""The importances rows of every current model, from the training tables (kept as they are while the
models are: see shoplens.ml.reuse.is_current)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import is_current, model_versions, unchanged

    trainings = [dbt.ref("intent_training"), dbt.ref("category_training")]
    if is_current(session, dbt.this, dbt.is_incremental, model_versions(trainings)):
        return unchanged(session, dbt.this)
    import pandas as pd

    from shoplens.ml.artifacts import unpack

    return unpack(pd.concat([t.df() for t in trainings]), "importances")
