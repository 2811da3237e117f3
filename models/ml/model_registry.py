"""The model registry: every model of every build, newest version per name is the live one.

Incremental: each build appends its models with version = previous version + 1.
"""


def model(dbt, session):
    dbt.config(materialized="incremental")
    from shoplens.ml.build import registry_table

    latest = {}
    if dbt.is_incremental:
        rows = session.sql(
            f"select model_name, max(version) from {dbt.this} group by model_name"
        ).fetchall()
        latest = {name: int(version) for name, version in rows}
    trainings = [dbt.ref("intent_training").df(), dbt.ref("category_training").df(),
                 dbt.ref("segment_training").df()]
    return registry_table(trainings, latest)
