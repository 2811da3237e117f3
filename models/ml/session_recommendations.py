"""Every session's category recommendation (top 3) as the live recommender would give it from
the session's events before checkout: the deployed category model blended with the session's
history (shoplens.ml.recommend). Rebuilt on every build: new sessions need recommendations
even when the model is reused."""


def model(dbt, session):
    from shoplens.ml.recommend import deployed, session_recommendations

    pipeline, version = deployed(dbt.ref("category_training").df())
    return session_recommendations(
        pipeline, version, dbt.ref("int_sessions_category_featurized").df()
    )
