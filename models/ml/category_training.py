"""Train the category-choice model, or keep it when nothing changed (see intent_training)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import Settings, category_fingerprint, train_or_reuse

    settings = Settings.from_config(dbt.config.get("ml_settings"))
    lines = dbt.ref("fct_order_lines")

    def train():
        from shoplens.ml.build import category_lines, category_training

        return category_training(category_lines(lines).df(), settings)

    fingerprint = category_fingerprint(lines, settings)
    return train_or_reuse(session, dbt.this, dbt.is_incremental, fingerprint, settings, train)
