"""Every session's category recommendation (top 3) as the live recommender would give it from
the session's events before checkout: the deployed category model blended with the session's
history (shoplens.ml.recommend), scored in batches of sessions. Incremental by
sessionization_key: a build recommends for the sessions int_sessions_category_featurized
rewrote since the last one, or for every session when the category model's version changed."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="sessionization_key", on_schema_change="append_new_columns")
    from shoplens.ml.recommend import changed_rows, deployed, session_recommendations

    pipeline, version = deployed(dbt.ref("category_training").df())
    rows = changed_rows(session, dbt.this, dbt.is_incremental,
                        dbt.ref("int_sessions_category_featurized"), version)
    return session_recommendations(pipeline, version, rows)
