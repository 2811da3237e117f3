"""One row per segment: size, share and mean behaviour features; kept as it is while the
segmentation is (see shoplens.ml.reuse.is_current)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import customer_behaviour, is_current, model_versions, unchanged

    versions = model_versions([dbt.ref("segment_training")], {"customer_segments"})
    if is_current(session, dbt.this, dbt.is_incremental, versions, by_name=False):
        return unchanged(session, dbt.this)
    from shoplens.ml.build import segment_profiles

    assigned = dbt.ref("customer_segments").project(
        "customer_id, segment_id, segment_name, model_version")
    customers = customer_behaviour(dbt.ref("int_customers_featurized"))
    return segment_profiles(assigned.df(), customers.df())
