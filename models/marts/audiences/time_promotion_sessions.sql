{#-
    The input of aud_time_promotions: each session once per category it had a product event in,
    with its start (weekday and hour: the cell it counts in) and whether it bought there.

    Incremental (delete+insert on sessionization_key; on Spark insert_overwrite of the
    session_date partitions it touches): a build recomputes the sessionization keys of the
    sessions int_sessions_aggregated wrote after this table's newest built_at (it rewrites every
    session of a key new events touched), from all events of those keys, so the refresh after a
    burst reads the touched sessions, not every event of the window.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy=keyed_incremental_strategy(),
    unique_key='sessionization_key',
    partition_by=spark_partition_by('session_date'),
    on_schema_change='fail'
) }}

with sessions as (
    select
        session_id,
        sessionization_key,
        session_start,
        session_date,
        start_weekday,
        start_hour
    from {{ ref('int_sessions_aggregated') }}
    {% if is_incremental() %}
    -- the sessions int_sessions_aggregated wrote since this table's last build (its newest
    -- built_at; appended last, so the filter skips the older blocks)
    where
        built_at > {{ incremental_watermark('built_at') }}
    {% endif %}
),

events as (
    select session_id, category, event_type
    from {{ ref('int_events_sessionized') }}
    where
        product_id is not null
        and category is not null
        {% if is_incremental() %}
        and sessionization_key in (select sessions.sessionization_key from sessions)
        {% endif %}
),

session_categories as (
    select
        session_id,
        category,
        max(case when event_type = 'purchase' then 1 else 0 end) as bought
    from events
    group by session_id, category
),

rebuilt as (
    select
        sessions.session_id,
        sessions.sessionization_key,
        session_categories.category,
        sessions.session_start,
        sessions.session_date,
        sessions.start_weekday,
        sessions.start_hour,
        session_categories.bought,
        {{ this_run_started_at() }} as built_at
    from session_categories
    inner join sessions
        on sessions.session_id = session_categories.session_id
)

{{ keyed_incremental_rows('rebuilt', 'sessionization_key', 'session_date') }}
