-- Funnel by category and day. A session's activity in a category (its product views, cart
-- additions and removals, purchases in that category) counts on the date of its first event in
-- that category. Checkouts carry no product: a session-category pair counts as a checkout when it
-- added to cart in the category and the session reached checkout.
--
-- Incremental (delete+insert by activity_date; on Spark insert_overwrite of the activity_date
-- partitions, the same days): a build recomputes every day on which the
-- sessions touched by newly loaded events have events (their old and new activity dates are
-- among those), from all sessions active on those days. A day is rewritten whole; a day left with
-- no activity at all by a late event would keep its old rows until a full refresh.
{{ config(
    materialized='incremental',
    incremental_strategy=keyed_incremental_strategy(),
    unique_key='activity_date',
    partition_by=spark_partition_by('activity_date'),
    on_schema_change='fail'
) }}

{#- the events table is referenced directly each time: a CTE over it would be copied -#}
{% set all_events = ref('int_events_sessionized') %}
{% if is_incremental() %}
with touched_dates as (
    select distinct event_date
    from {{ all_events }}
    where
        sessionization_key in (
            select touched.sessionization_key
            from {{ all_events }} as touched
            where
                touched.loaded_at > {{ incremental_watermark('max_loaded_at') }}
        )
),

-- every session with an event on a touched day spans that day
candidate_sessions as (
    select distinct
        sessions.session_id,
        sessions.session_date,
        cast(sessions.session_end as date) as end_date
    from {{ ref('int_sessions_aggregated') }} as sessions
    inner join touched_dates
        on touched_dates.event_date
        between sessions.session_date and cast(sessions.session_end as date)
),

-- the days those sessions span (touched days can be months apart: a min-max range over all of
-- them would let most events probe the session list)
candidate_days as (
    select distinct {{ dates_spanned('session_date', 'end_date') }} as event_date
    from candidate_sessions
),

events as (
    select * from {{ all_events }}
    where category is not null
        and event_date in (select candidate_days.event_date from candidate_days)
        and session_id in (select candidate_sessions.session_id from candidate_sessions)
),
{% else %}
with events as (
    select * from {{ all_events }}
    where category is not null
),
{% endif %}

sessions as (
    select session_id, checkout_reached from {{ ref('int_sessions_aggregated') }}
),

session_category as (
    select
        session_id,
        category,
        min(event_date) as activity_date,
        count(case when event_type = 'product_view' then 1 end) as product_views,
        count(case when event_type = 'add_to_cart' then 1 end) as cart_additions,
        count(case when event_type = 'remove_from_cart' then 1 end) as cart_removals,
        count(case when event_type = 'purchase' then 1 end) as purchases,
        coalesce(sum(case when event_type = 'purchase' then quantity end), 0) as units_purchased,
        coalesce(sum(purchase_revenue), 0) as revenue,
        max(loaded_at) as max_loaded_at
    from events
    group by session_id, category
),

flagged as (
    select
        session_category.*,
        sessions.checkout_reached
    from session_category
    inner join sessions
        on sessions.session_id = session_category.session_id
    {% if is_incremental() %}
    where session_category.activity_date in (select touched_dates.event_date from touched_dates)
    {% endif %}
)

select
    activity_date,
    category,
    count(*) as sessions,
    count(case when product_views > 0 then 1 end) as viewing_sessions,
    {{ sum_int('product_views') }} as product_views,
    {{ sum_int('cart_additions') }} as cart_additions,
    {{ sum_int('cart_removals') }} as cart_removals,
    count(case when cart_additions > 0 then 1 end) as cart_sessions,
    count(case when cart_additions > 0 and checkout_reached then 1 end) as checkouts,
    {{ sum_int('purchases') }} as purchases,
    count(case when purchases > 0 then 1 end) as purchase_sessions,
    cast(sum(units_purchased) as {{ dbt.type_bigint() }}) as units_purchased,
    sum(revenue) as revenue,
    count(case when cart_additions > 0 and purchases = 0 then 1 end) as abandoned_cart_sessions,
    (
        cast(count(case when cart_additions > 0 and purchases = 0 then 1 end) as double)
        / nullif(count(case when cart_additions > 0 then 1 end), 0)
    ) as cart_abandonment_rate,
    (
        cast(count(case when cart_additions > 0 then 1 end) as double)
        / nullif(count(case when product_views > 0 then 1 end), 0)
    ) as view_to_cart_rate,
    (
        cast(count(case when purchases > 0 then 1 end) as double) / nullif(count(*), 0)
    ) as conversion_rate,
    max(max_loaded_at) as max_loaded_at
from flagged
group by activity_date, category
