-- Data quality counts: raw rows, usable rows, quarantined rows by reason (duplicates included),
-- loader rejects by reason, and sessions derived from inactivity. One row per dataset and check.
-- Event defects come from the row-by-row checks counted per load (int_event_defects_counted):
-- duplicates removed = rows without a defect - usable rows, per loader, since exactly one
-- defect-free copy of each event is kept. This equals the duplicate_event_id (duplicate_row for
-- REES46, whose copies are found by content) rows of stg_shop__events_quarantined.
-- Usable events whose price cannot be used (zero, negative, NaN, infinite) are kept with a null
-- price and counted as 'flagged', per flag, with the purchases among them (left out of revenue).
with event_checks as (
    select defect_reason, {{ sum_int('row_count') }} as row_count
    from {{ ref('int_event_defects_counted') }}
    group by defect_reason
),

usable_events_by_source as (
    -- int_events_sessionized holds exactly the rows of stg_shop__events, already computed
    select load_source, count(*) as row_count
    from {{ ref('int_events_sessionized') }}
    group by load_source
),

usable_events as (
    select coalesce({{ sum_int('row_count') }}, 0) as row_count from usable_events_by_source
),

duplicates_removed as (
    select
        case when clean.load_source = 'rees46' then 'duplicate_row' else 'duplicate_event_id' end
            as check_name,
        clean.row_count - coalesce(usable.row_count, 0) as row_count
    from (
        select load_source, {{ sum_int('row_count') }} as row_count
        from {{ ref('int_event_defects_counted') }}
        where defect_reason is null
        group by load_source
    ) as clean
    left join usable_events_by_source as usable
        on usable.load_source = clean.load_source
),

price_flags as (
    select price_flag, event_type
    from {{ ref('int_events_sessionized') }}
    where price_flag is not null
),

transaction_quarantine as (
    select quarantine_reason, count(*) as row_count
    from {{ ref('stg_shop__transactions_quarantined') }}
    group by quarantine_reason
),

-- The branches after the first take its column names: no alias on each (AL03).
-- noqa: disable=AL03
checks as (
    select 'events' as dataset, 'raw_rows' as check_name, {{ sum_int('row_count') }} as row_count
    from event_checks
    union all
    select 'events', 'usable_rows', row_count from usable_events
    union all
    select 'events', defect_reason, row_count from event_checks
    where defect_reason is not null
    union all
    select 'events', check_name, {{ sum_int('row_count') }}
    from duplicates_removed
    group by check_name
    union all
    select 'events', price_flag, count(*) from price_flags
    group by price_flag
    union all
    select 'events', 'purchase_unusable_price', count(*) from price_flags
    where event_type = 'purchase'
    union all
    select 'transactions', 'raw_rows', count(*) from {{ source('shop', 'transactions') }}
    union all
    select 'transactions', 'usable_rows', count(*) from {{ ref('stg_shop__transactions') }}
    union all
    select 'transactions', quarantine_reason, row_count from transaction_quarantine
    union all
    select 'sessions', 'sessions', count(*) from {{ ref('int_sessions_aggregated') }}
    union all
    select 'sessions', 'sessionized_by_inactivity', count(*)
    from {{ ref('int_sessions_aggregated') }}
    where session_source = 'inactivity'
    union all
    -- pieces of a session id other than the one that keeps it (shared by users, or split by
    -- inactivity)
    select 'sessions', 'session_id_split', count(*)
    from {{ ref('int_sessions_aggregated') }}
    where session_source = 'user_session' and session_id <> user_session
    union all
    select {{ dbt.concat(["'rejects:'", "source"]) }}, reason, count(*)
    from {{ source('shop', 'rejects') }}
    group by source, reason
    union all
    -- Kafka messages the broker deleted (retention) before the sink read them: gaps, and the
    -- messages in them
    select {{ dbt.concat(["'kafka:'", "topic"]) }}, 'sink_gaps', count(*)
    from {{ source('shop', 'sink_gaps') }}
    group by topic
    union all
    select
        {{ dbt.concat(["'kafka:'", "topic"]) }},
        'messages_deleted_unread',
        {{ sum_int('last_offset - first_offset + 1') }}
    from {{ source('shop', 'sink_gaps') }}
    group by topic
)
-- noqa: enable=AL03

select
    dataset,
    check_name,
    case
        when check_name in ('raw_rows', 'usable_rows', 'sessions') then 'volume'
        when dataset like 'rejects:%' then 'rejected_by_loader'
        when check_name like 'duplicate_%' then 'duplicate_removed'
        when check_name in ('non_positive_price', 'non_finite_price', 'purchase_unusable_price')
            then 'flagged'
        when check_name in ('sessionized_by_inactivity', 'session_id_split') then 'repaired'
        when check_name in ('sink_gaps', 'messages_deleted_unread') then 'lost_before_read'
        else 'quarantined'
    end as check_kind,
    row_count
from checks
