"""The model registry: every registered model version; the newest per name is the live one.

Incremental: a build appends the model versions it trained (none when every model was reused);
the post-hook (macro ml_prune_registry) keeps the last ml_registry_keep_versions versions per
model plus the ones the training tables hold.
"""


def model(dbt, session):
    dbt.config(materialized="incremental", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import table_rows, unchanged, unregistered

    registered = set()
    if dbt.is_incremental:
        registered = {(n, int(v)) for n, v in
                      table_rows(session, f"select model_name, version from {dbt.this}")}
    trainings = [dbt.ref("intent_training"), dbt.ref("category_training"),
                 dbt.ref("segment_training")]
    new = unregistered(trainings, registered)
    if dbt.is_incremental and not new:
        return unchanged(session, dbt.this)
    from shoplens.ml.build import registry_table

    return registry_table(new, registered)
