"""Train the category-choice model, or keep it when nothing changed (see intent_training)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import Settings, category_fingerprint, train_or_reuse

    settings = Settings.from_config(
        dbt.config.get("ml_seed"), dbt.config.get("ml_n_estimators"),
        dbt.config.get("ml_max_training_rows"), dbt.config.get("ml_n_jobs"),
        dbt.config.get("ml_force_retrain"))
    lines = dbt.ref("fct_order_lines")

    def train():
        from shoplens.ml.build import category_training

        return category_training(lines.df(), settings)

    fingerprint = category_fingerprint(lines, settings)
    return train_or_reuse(session, dbt.this, dbt.is_incremental, fingerprint, settings, train)
