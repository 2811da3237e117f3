"""Train the purchase-intent models once per build: one row per model (see shoplens.ml.build)."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import Settings, intent_training

    settings = Settings.from_config(
        dbt.config.get("ml_seed"), dbt.config.get("ml_n_estimators"),
        dbt.config.get("ml_max_training_rows"), dbt.config.get("ml_n_jobs"))
    definitions = dbt.ref("feature_definitions").df()
    columns = definitions.loc[definitions["feature_set"] == "early_intent", "feature_columns"]
    return intent_training(
        early=dbt.ref("int_sessions_early_featurized").df(),
        sessions=dbt.ref("fct_sessions").df(),
        feature_columns=columns.iloc[0].split(","),
        settings=settings,
    )
