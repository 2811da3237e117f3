{#-
    One row per usable event, with its session.

    Events with a session id (user_session) are split into sessions per session id and customer
    (REES46 ids can be shared by several users) and by inactivity (a gap of more than
    var('session_inactivity_minutes') starts a new session, so one id spread over years is not
    one session). The piece that starts first (ties: lowest customer id) keeps the user_session
    as its session_id; any other piece is '<user_session>#<customer_id>-<start time>'. Events
    without a session id are sessionised per customer by the same inactivity rule; their
    session_id is 'user-<customer_id>-<start time>'.

    Incremental (delete+insert on event_id; on Spark insert_overwrite of the event_date
    partitions it touches, see keyed_incremental_rows): staging decides which raw rows are used
    (stg_shop__events_classified ranks each new raw row with the earlier copies of its event), so
    a build reads the usable rows staging wrote since this table's newest built_at (the classified
    table stamps every row it writes or re-ranks with its run's start, and a model of the same run
    is built after it), plus the events already here that share a session id with them and every
    id-less event of the customers they touch (a late event can split or merge their sessions).
    A late defect-free copy of an event whose earlier copies were all defective is such a row; a
    late copy of an event already kept re-stamps the kept row, whose session is recomputed unchanged.
    sessionization_key names the unit that is recomputed together downstream: the
    user_session, or 'user-<customer_id>' for all of a customer's id-less sessions.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy=keyed_incremental_strategy(),
    unique_key='event_id',
    partition_by=spark_partition_by('event_date'),
    on_schema_change='fail'
) }}

-- depends_on: {{ ref('stg_shop__events_classified') }}
{% set staged_columns = ['event_id', 'event_time', 'event_date', 'event_type', 'source_event_type',
    'product_id', 'category_id', 'category_code', 'category', 'brand', 'price', 'price_flag',
    'customer_id', 'user_session', 'quantity', 'device', 'traffic_source', 'page', 'load_source',
    'loaded_at'] %}

{% if is_incremental() %}
with watermark as (
    select coalesce(max(built_at), {{ epoch_start() }}) as built_at from {{ this }}
),

-- the raw rows staging classified or re-ranked since this table's last build
reclassified as (
    select * from {{ ref('stg_shop__events_classified') }}
    where built_at > (select watermark.built_at from watermark)
),

-- the usable ones, as stg_shop__events has them (a kept copy re-ranked behind a late copy of
-- its event is here again, unchanged)
new_events as (
    {{ shop_events_usable('reclassified') }}
),

touched_customers as (
    select distinct customer_id from new_events where user_session is null
),

touched_sessions as (
    select distinct user_session from new_events where user_session is not null
),

-- New events, plus the events already here that are sessionised together with them: those of
-- the session ids they carry, and the id-less events of the customers they touch.
to_process as (
    select {{ staged_columns | join(', ') }} from new_events
    union all
    select {{ staged_columns | join(', ') }}
    from {{ this }} as here
    where
        (
            (
                here.session_source = 'inactivity'
                and here.customer_id in (
                    select touched_customers.customer_id from touched_customers
                )
            )
            or (
                here.session_source = 'user_session'
                and here.user_session in (
                    select touched_sessions.user_session from touched_sessions
                )
            )
        )
        and not exists (
            select 1 from new_events where new_events.event_id = here.event_id
        )
),

with_id_events as (
    select * from to_process where user_session is not null
),
{% set with_id_source = 'with_id_events' %}
{% set id_less_source = 'to_process' %}
{% else %}
{#-
    Full build: the usable events of stg_shop__events (a view over the rows staging ranked and
    stored), read four times: the groups and the long groups' events with a session id, the
    wide rows with one, and the id-less ones.
-#}
with
{% set with_id_source = ref('stg_shop__events') %}
{% set id_less_source = ref('stg_shop__events') %}
{% endif %}

{#- Sessions of the events with a session id, without ordering most of them: the events of a
    (user_session, customer_id) group whose first and last are at most the inactivity limit apart
    cannot have a longer gap between two of them (the whole seconds between consecutive events
    add up to the group's span), so such a group is one piece that starts at its first event, and
    a group-by finds it. Only the events of the groups that span more go through the window
    (2 % of a REES46 month's events). Each piece then takes its session_id (the first piece of a
    user_session, ties by lowest customer id, keeps it) and the wide rows join their piece by
    group and time: a join on a piece table of sessions, not on every event's id. -#}
with_id_groups as (
    select
        user_session,
        customer_id,
        min(event_time) as first_event_time,
        max(event_time) as last_event_time
    from {{ with_id_source }}
    where user_session is not null
    group by user_session, customer_id
),

long_groups as (
    select user_session, customer_id
    from with_id_groups
    where {{ seconds_between('first_event_time', 'last_event_time') }}
        > {{ var('session_inactivity_minutes') }} * 60
),

long_group_events as (
    select events.event_id, events.event_time, events.customer_id, events.user_session
    from {{ with_id_source }} as events
    inner join long_groups
        on
        long_groups.user_session = events.user_session
        and long_groups.customer_id = events.customer_id
),

long_group_pieces as (
    select
        user_session,
        customer_id,
        session_start_time,
        lead(session_start_time) over (
            partition by user_session, customer_id order by session_start_time
        ) as next_start_time
    from (
        select distinct user_session, customer_id, session_start_time
        from (
            {{ split_by_inactivity('long_group_events', 'user_session, customer_id') }}
        ) as split_groups
    ) as piece_starts
),

with_id_pieces as (
    select
        user_session,
        customer_id,
        first_event_time as session_start_time,
        cast(null as {{ dbt.type_timestamp() }}) as next_start_time
    from with_id_groups
    where {{ seconds_between('first_event_time', 'last_event_time') }}
        <= {{ var('session_inactivity_minutes') }} * 60
    union all
    select user_session, customer_id, session_start_time, next_start_time
    from long_group_pieces
),

with_id_sessions as (
    select
        user_session,
        customer_id,
        session_start_time,
        next_start_time,
        case
            when row_number() over (
                    partition by user_session order by session_start_time, customer_id
                ) = 1
                then user_session
            else {{ dbt.concat(["user_session", "'#'",
                "cast(customer_id as " ~ dbt.type_string() ~ ")", "'-'",
                "cast(session_start_time as " ~ dbt.type_string() ~ ")"]) }}
        end as session_id
    from with_id_pieces
),

with_id as (
    select
        {%- for column in staged_columns %}
        events.{{ column }},
        {%- endfor %}
        with_id_sessions.session_id,
        events.user_session as sessionization_key,
        'user_session' as session_source
    from {{ with_id_source }} as events
    inner join with_id_sessions
        on
        with_id_sessions.user_session = events.user_session
        and with_id_sessions.customer_id = events.customer_id
        and with_id_sessions.session_start_time <= events.event_time
        and (
            with_id_sessions.next_start_time is null
            or with_id_sessions.next_start_time > events.event_time
        )
    where events.user_session is not null
),

id_less_events as (
    select {{ staged_columns | join(', ') }}
    from {{ id_less_source }}
    where user_session is null
),

id_less_sessions as (
    {{ split_by_inactivity('id_less_events', 'customer_id') }}
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
        'user_session', 'customer_id', 'event_time', 'event_date', 'event_type',
        'source_event_type', 'product_id', 'category_id', 'category_code', 'category', 'brand',
        'price', 'price_flag', 'quantity', 'device', 'traffic_source', 'page', 'load_source',
        'loaded_at'] %}
    select {{ columns | join(', ') }} from with_id
    union all
    select {{ columns | join(', ') }} from inactivity
),

rebuilt as (
    select
        *,
        case when event_type = 'purchase' then price * quantity end as purchase_revenue,
        {{ this_run_started_at() }} as built_at
    from sessionized
)

{{ keyed_incremental_rows('rebuilt', 'event_id', 'event_date') }}
