{#-
    The early-intent feature SQL exactly as dbt renders it from the macro early_intent_features,
    over a placeholder relation name. The live scorer replaces the placeholder with its own
    relation of in-progress events (shoplens.ml.registry.feature_sql) and so computes the same
    features the deployed model was trained on.
-#}
{%- set placeholder = '__shoplens_events__' -%}
{%- set rendered -%}{{ early_intent_features(placeholder) }}{%- endset -%}

select
    'early_intent' as feature_set,
    '{{ placeholder }}' as relation_placeholder,
    '{{ early_intent_feature_columns() | join(",") }}' as feature_columns,
    '{{ rendered | trim | replace("'", "''") }}' as feature_sql
