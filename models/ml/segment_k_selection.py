"""Inertia, silhouette and Davies-Bouldin per k (2..8) and the chosen k."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import is_current, model_versions, unchanged

    training = dbt.ref("segment_training")
    versions = model_versions([training], {"customer_segments"})
    if is_current(session, dbt.this, dbt.is_incremental, versions, by_name=False):
        return unchanged(session, dbt.this)
    from shoplens.ml.artifacts import unpack

    return unpack(training.df(), "k_selection")
