{#-
    The category recommender's input (macro session_category_features over the sessionised
    events and the customers) at two points of each session: history_cut 'before_checkout'
    (events before the first checkout or purchase: what the live recommender sees, and the input
    of ml.session_recommendations) and 'browsing' (events before the first cart add, for the
    offline evaluation). The same macro renders the SQL the live recommender runs
    (ml.feature_definitions, feature_set session_category). Incremental like
    int_sessions_early_featurized: a build recomputes the sessions new events touched (on
    Spark: partitions by transaction_month, the month of the year of the latest event seen).
-#}
{{ config(
    materialized='incremental',
    incremental_strategy=keyed_incremental_strategy(),
    unique_key='sessionization_key',
    partition_by=spark_partition_by('transaction_month'),
    on_schema_change='fail'
) }}

with sessions as (
    select
        session_id,
        sessionization_key,
        max_loaded_at
    from {{ ref('int_sessions_aggregated') }}
    {% if is_incremental() %}
    where sessionization_key in (
            select fresh.sessionization_key
            from {{ ref('int_sessions_aggregated') }} as fresh
            where fresh.max_loaded_at > {{ incremental_watermark('max_loaded_at') }}
        )
    {% endif %}
),

{% if is_incremental() %}
events as (
    select touched.*
    from {{ ref('int_events_sessionized') }} as touched
    where touched.sessionization_key in (select sessions.sessionization_key from sessions)
),
{% set events = 'events' %}
{% else %}
{#- a full build hands the table itself to the macro: a CTE over all of it would be copied -#}
{% set events = ref('int_events_sessionized') %}
{% endif %}

before_checkout as (
    {{ session_category_features(events, ref('stg_shop__customers')) }}
),

browsing as (
    {{ session_category_features(
        events,
        ref('stg_shop__customers'),
        ['add_to_cart', 'checkout', 'purchase']
    ) }}
),

features as (
    select
        'before_checkout' as history_cut,
        *
    from before_checkout
    union all
    select
        'browsing' as history_cut,
        *
    from browsing
),

rebuilt as (
    select
        features.*,
        sessions.sessionization_key,
        sessions.max_loaded_at,
        {{ this_run_started_at() }} as built_at
    from sessions
    inner join features
        on features.session_id = sessions.session_id
)

{{ keyed_incremental_rows('rebuilt', 'sessionization_key', 'transaction_month') }}
