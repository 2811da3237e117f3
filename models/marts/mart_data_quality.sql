-- Data quality counts: raw rows, usable rows, quarantined rows by reason (duplicates included),
-- loader rejects by reason, and sessions derived from inactivity. One row per dataset and check.
-- Event defects come from the row-by-row checks counted per load (int_event_defects_counted):
-- duplicates removed = rows without a defect - usable rows, since exactly one defect-free copy
-- of each event id is kept. This equals the duplicate_event_id rows of
-- stg_shop__events_quarantined.
with event_checks as (
    select defect_reason, {{ sum_int('row_count') }} as row_count
    from {{ ref('int_event_defects_counted') }}
    group by defect_reason
),

usable_events as (
    -- int_events_sessionized holds exactly the rows of stg_shop__events, already computed
    select count(*) as row_count from {{ ref('int_events_sessionized') }}
),

transaction_quarantine as (
    select quarantine_reason, count(*) as row_count
    from {{ ref('stg_shop__transactions_quarantined') }}
    group by quarantine_reason
),

checks as (
    select 'events' as dataset, 'raw_rows' as check_name, {{ sum_int('row_count') }} as row_count
    from event_checks
    union all
    select 'events', 'usable_rows', row_count from usable_events
    union all
    select 'events', defect_reason, row_count from event_checks
    where defect_reason is not null
    union all
    select 'events', 'duplicate_event_id',
        coalesce((select row_count from event_checks where defect_reason is null), 0)
        - (select row_count from usable_events)
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
    select {{ dbt.concat(["'rejects:'", "source"]) }}, reason, count(*)
    from {{ source('shop', 'rejects') }}
    group by source, reason
)

select
    dataset,
    check_name,
    case
        when check_name in ('raw_rows', 'usable_rows', 'sessions') then 'volume'
        when dataset like 'rejects:%' then 'rejected_by_loader'
        when check_name like 'duplicate_%' then 'duplicate_removed'
        when check_name = 'sessionized_by_inactivity' then 'repaired'
        else 'quarantined'
    end as check_kind,
    row_count
from checks
