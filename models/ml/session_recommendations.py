"""Every session's category recommendation (top 3) as the live recommender would give it from
the session's events before checkout: the deployed category model blended with the session's
history (shoplens.ml.recommend), scored in batches of sessions. Incremental by
sessionization_key: a build recommends for the sessions int_sessions_category_featurized
rewrote since the last one, or for every session when the category model's version changed.
When there is none of either, the table is kept without loading the model (shoplens.ml.refresh)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="sessionization_key", on_schema_change="append_new_columns")
    from shoplens.ml.refresh import changed_rows, recommendations_current
    from shoplens.ml.reuse import unchanged

    training = dbt.ref("category_training")
    features = dbt.ref("int_sessions_category_featurized")
    if recommendations_current(session, dbt.this, dbt.is_incremental, training, features):
        return unchanged(session, dbt.this)
    from shoplens.ml.recommend import deployed, session_recommendations

    pipeline, version = deployed(training.df())
    rows = changed_rows(session, dbt.this, dbt.is_incremental, features, version)
    return session_recommendations(pipeline, version, rows)
