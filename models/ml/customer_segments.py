"""Every customer's segment and 2-D PCA coordinates."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import customer_segments
    from shoplens.ml.segments import customer_behaviour

    customers = customer_behaviour(dbt.ref("fct_sessions").df())
    return customer_segments(dbt.ref("segment_training").df(), customers)
