"""Fit the customer segmentation (K-Means, k by silhouette, named by the seed rule) and PCA on
the behaviour rates of int_customers_featurized, or keep them when nothing changed (see
intent_training)."""


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert",
               unique_key="true", on_schema_change="append_new_columns")
    from shoplens.ml.reuse import (Settings, customer_behaviour, segment_fingerprint,
                                   train_or_reuse)

    settings = Settings.from_config(dbt.config.get("ml_settings"))
    behaviour = customer_behaviour(dbt.ref("int_customers_featurized"))
    rules = dbt.ref("segment_naming_rules")

    def train():
        from shoplens.ml.build import segment_training

        return segment_training(behaviour.df(), rules.df(), settings)

    fingerprint = segment_fingerprint(behaviour, rules, settings)
    return train_or_reuse(session, dbt.this, dbt.is_incremental, fingerprint, settings, train)
