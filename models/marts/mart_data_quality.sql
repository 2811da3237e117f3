-- Data quality counts: raw rows, usable rows, quarantined rows by reason (duplicates included),
-- loader rejects by reason, and sessions derived from inactivity. One row per dataset and check.
with event_quarantine as (
    select quarantine_reason, count(*) as row_count
    from {{ ref('stg_shop__events_quarantined') }}
    group by quarantine_reason
),

transaction_quarantine as (
    select quarantine_reason, count(*) as row_count
    from {{ ref('stg_shop__transactions_quarantined') }}
    group by quarantine_reason
),

checks as (
    select 'events' as dataset, 'raw_rows' as check_name, count(*) as row_count
    from {{ source('shop', 'events') }}
    union all
    select 'events', 'usable_rows', count(*) from {{ ref('stg_shop__events') }}
    union all
    select 'events', quarantine_reason, row_count from event_quarantine
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
