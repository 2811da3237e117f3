{#-
    One row per usable event, with its session. session_id is the event's user_session; events
    without one are sessionised per customer: a gap of more than var('session_inactivity_minutes')
    starts a new session, whose id is 'user-<customer_id>-<start time>'.

    Incremental (delete+insert on event_id): a build reads only events loaded after the newest
    loaded_at already here, plus every id-less event of the customers those touch (a late event
    can split or merge their inactivity sessions). sessionization_key names the unit that is
    recomputed together downstream: the user_session, or 'user-<customer_id>' for all of a
    customer's inactivity sessions.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='fail'
) }}

-- depends_on: {{ source('shop', 'events') }}
-- depends_on: {{ ref('categories') }}
{% set staged_columns = ['event_id', 'event_time', 'event_date', 'event_type', 'source_event_type',
    'product_id', 'category_id', 'category_code', 'category', 'brand', 'price', 'customer_id',
    'user_session', 'quantity', 'device', 'traffic_source', 'page', 'load_source', 'loaded_at'] %}

{% if is_incremental() %}
with watermark as (
    select coalesce(max(loaded_at), {{ epoch_start() }}) as loaded_at from {{ this }}
),

-- Staging logic (shop_events_staged, the same macro as stg_shop__events) over only the raw
-- rows loaded since the watermark. A copy of an event already here is a duplicate (the kept copy
-- was loaded earlier, and defect-free copies win), so new copies of those ids are dropped; ids
-- whose earlier copies were all defective get their first defect-free copy now, exactly as a
-- full build would rank them.
staged_new as (
    {{ shop_events_staged(source('shop', 'events'),
        "loaded_at > (select loaded_at from watermark)") }}
),

already_here as (
    -- probe the big table with the few new ids (a NOT IN would hash all ids already here)
    select event_id from {{ this }}
    where event_id in (select event_id from staged_new)
),

new_events as (
    select staged_new.*
    from staged_new
    left join already_here
        on already_here.event_id = staged_new.event_id
    where already_here.event_id is null
),

touched_customers as (
    select distinct customer_id from new_events where user_session is null
),

-- New events, plus the id-less events already here of the customers those touch: their
-- inactivity sessions are recomputed as a whole.
to_process as (
    select {{ staged_columns | join(', ') }} from new_events
    union all
    select
    {%- for column in staged_columns %}
        {% if column == 'user_session' %}cast(null as {{ dbt.type_string() }}) as user_session
        {%- else %}{{ column }}{% endif %}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ this }}
    where session_source = 'inactivity'
        and customer_id in (select customer_id from touched_customers)
),
{% set with_id_events = 'to_process' %}
{% set id_less_events = 'to_process' %}
{% else %}
{#-
    Full build: the events with a session id stream straight from stg_shop__events; the few
    id-less ones are staged separately from the raw rows of their event ids (all copies of those
    ids, so deduplication picks the same copy as staging). Reading the view once avoids a copy
    of millions of rows.
-#}
with id_less_staged as (
    {{ shop_events_staged(source('shop', 'events'),
        "event_id in (select event_id from " ~ source('shop', 'events')
        ~ " where nullif(trim(user_session), '') is null)") }}
),

{% set with_id_events = ref('stg_shop__events') %}
{% set id_less_events = 'id_less_staged' %}
{% endif %}

with_id as (
    select
        {{ staged_columns | join(', ') }},
        user_session as session_id,
        user_session as sessionization_key,
        'user_session' as session_source
    from {{ with_id_events }}
    where user_session is not null
),

id_less as (
    select
        {{ staged_columns | join(', ') }},
        lag(event_time) over (
            partition by customer_id order by event_time, event_id
        ) as previous_event_time
    from {{ id_less_events }}
    where user_session is null
),

id_less_starts as (
    select
        *,
        case
            when previous_event_time is null
                or {{ seconds_between('previous_event_time', 'event_time') }}
                    > {{ var('session_inactivity_minutes') }} * 60
                then event_time
        end as started_session_at
    from id_less
),

id_less_sessions as (
    select
        *,
        max(started_session_at) over (
            partition by customer_id order by event_time, event_id
            rows between unbounded preceding and current row
        ) as session_start_time
    from id_less_starts
),

inactivity as (
    select
        *,
        {{ dbt.concat(["'user-'", "cast(customer_id as " ~ dbt.type_string() ~ ")", "'-'",
                       "cast(session_start_time as " ~ dbt.type_string() ~ ")"]) }} as session_id,
        {{ dbt.concat(["'user-'", "cast(customer_id as " ~ dbt.type_string() ~ ")"]) }}
            as sessionization_key,
        'inactivity' as session_source
    from id_less_sessions
),

sessionized as (
    {%- set columns = ['event_id', 'session_id', 'sessionization_key', 'session_source',
        'customer_id', 'event_time', 'event_date', 'event_type', 'source_event_type',
        'product_id', 'category_id', 'category_code', 'category', 'brand', 'price', 'quantity',
        'device', 'traffic_source', 'page', 'load_source', 'loaded_at'] %}
    select {{ columns | join(', ') }} from with_id
    union all
    select {{ columns | join(', ') }} from inactivity
)

select
    *,
    case when event_type = 'purchase' then price * quantity end as purchase_revenue,
    {{ this_run_started_at() }} as built_at
from sessionized
