{#-
    What the live scorer needs to turn raw contract rows into model input, exactly as dbt renders
    it, over placeholder relation names: the staging SQL of stg_shop__events (macro
    shop_events_staged: trims, event-type vocabulary, row checks, deduplication, category names)
    and the early-intent feature SQL (macro early_intent_features) that reads staged events.
    The scorer substitutes its own relations (shoplens.ml.registry.staging_sql / feature_sql),
    so live rows are cleaned and featurised by the training definitions, not by a copy.
-#}
{%- set placeholder = '__shoplens_events__' -%}
{%- set raw_placeholder = '__shoplens_raw_events__' -%}
{%- set categories_placeholder = '__shoplens_categories__' -%}
{%- set customers = '__shoplens_customers__' -%}
{%- set rendered -%}{{ early_intent_features(placeholder) }}{%- endset -%}
{%- set category_rendered -%}{{ session_category_features(placeholder, customers) }}{%- endset -%}
{%- set staging -%}
{{ shop_events_staged(raw_placeholder, categories_relation=categories_placeholder) }}
{%- endset -%}
-- depends_on: {{ ref('categories') }}

select
    'early_intent' as feature_set,
    '{{ placeholder }}' as relation_placeholder,
    '{{ early_intent_feature_columns() | join(",") }}' as feature_columns,
    '{{ rendered | trim | replace("'", "''") }}' as feature_sql,
    '{{ raw_placeholder }}' as raw_relation_placeholder,
    '{{ categories_placeholder }}' as categories_placeholder,
    '{{ staging | trim | replace("'", "''") }}' as staging_sql,
    cast(null as {{ dbt.type_string() }}) as customers_placeholder

union all

{# the category recommender's features (macro session_category_features): rows per session
   and history category, over the staged events (same staging SQL) and a customers relation #}
select
    'session_category' as feature_set,
    '{{ placeholder }}' as relation_placeholder,
    'age,gender,country,transaction_hour,transaction_weekday,transaction_month' as feature_columns,
    '{{ category_rendered | trim | replace("'", "''") }}' as feature_sql,
    '{{ raw_placeholder }}' as raw_relation_placeholder,
    '{{ categories_placeholder }}' as categories_placeholder,
    '{{ staging | trim | replace("'", "''") }}' as staging_sql,
    '{{ customers }}' as customers_placeholder
