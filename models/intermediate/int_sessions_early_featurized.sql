{#-
    One row per session: the early-intent features (macro early_intent_features, events strictly
    before the first checkout or purchase) with the label purchase_made and session_start for
    time-based splits. Incremental like int_sessions_aggregated (on Spark: partitions by
    start_month, the month of the year the session started).
-#}
{{ config(
    materialized='incremental',
    incremental_strategy=keyed_incremental_strategy(),
    unique_key='sessionization_key',
    partition_by=spark_partition_by('start_month'),
    on_schema_change='fail'
) }}

with sessions as (
    select
        session_id,
        sessionization_key,
        customer_id,
        session_start,
        purchase_made,
        max_loaded_at
    from {{ ref('int_sessions_aggregated') }}
    {% if is_incremental() %}
    where
        sessionization_key in (
            select touched.sessionization_key
            from {{ ref('int_sessions_aggregated') }} as touched
            where
                touched.max_loaded_at > {{ incremental_watermark('max_loaded_at') }}
        )
    {% endif %}
),

{% if is_incremental() %}
events as (
    select * from {{ ref('int_events_sessionized') }}
    where sessionization_key in (select sessions.sessionization_key from sessions)
),
{% set events = 'events' %}
{% else %}
{#- a full build hands the table itself to the macro: a CTE over all of it would be copied -#}
{% set events = ref('int_events_sessionized') %}
{% endif %}

features as (
    {{ early_intent_features(events) }}
),

rebuilt as (
    select
        sessions.session_id,
        sessions.sessionization_key,
        sessions.customer_id,
        sessions.session_start,
        {%- for column in early_intent_feature_columns() %}
        features.{{ column }},
        {%- endfor %}
        sessions.purchase_made,
        sessions.max_loaded_at,
        {{ this_run_started_at() }} as built_at
    from sessions
    inner join features
        on features.session_id = sessions.session_id
)

{{ keyed_incremental_rows('rebuilt', 'sessionization_key', 'start_month') }}
