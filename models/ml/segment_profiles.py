"""One row per segment: size, share and mean behaviour features."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import segment_profiles
    from shoplens.ml.segments import customer_behaviour

    customers = customer_behaviour(dbt.ref("fct_sessions").df())
    return segment_profiles(dbt.ref("customer_segments").df(), customers)
