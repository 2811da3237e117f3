"""The curves rows of every model trained in this build, from the training tables."""


def model(dbt, session):
    dbt.config(materialized="table")
    import pandas as pd

    from shoplens.ml.artifacts import unpack

    training = pd.concat([dbt.ref("intent_training").df(), dbt.ref("category_training").df()])
    return unpack(training, "curves")
