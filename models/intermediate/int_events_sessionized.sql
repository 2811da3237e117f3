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

with events as (
    select * from {{ ref('stg_shop__events') }}
),

{% if is_incremental() %}
new_events as (
    select * from events
    where loaded_at > (select coalesce(max(loaded_at), {{ epoch_start() }}) from {{ this }})
),

touched_customers as (
    select distinct customer_id from new_events where user_session is null
),

to_process as (
    select * from new_events where user_session is not null
    union all
    select * from events
    where user_session is null
        and customer_id in (select customer_id from touched_customers)
),
{% else %}
to_process as (
    select * from events
),
{% endif %}

with_id as (
    select
        *,
        user_session as session_id,
        user_session as sessionization_key,
        'user_session' as session_source
    from to_process
    where user_session is not null
),

id_less as (
    select
        *,
        lag(event_time) over (
            partition by customer_id order by event_time, event_id
        ) as previous_event_time
    from to_process
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
    case when event_type = 'purchase' then price * quantity end as purchase_revenue
from sessionized
