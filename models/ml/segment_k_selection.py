"""Inertia, silhouette and Davies-Bouldin per k (2..8) and the chosen k."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.artifacts import unpack

    return unpack(dbt.ref("segment_training").df(), "k_selection")
