-- Nothing is lost silently: every raw event row is either usable or quarantined with a reason.
with counts as (
    select
        (select count(*) from {{ source('shop', 'events') }}) as raw_rows,
        (select count(*) from {{ ref('int_events_sessionized') }}) as usable_rows,
        (
            select sum(row_count) from {{ ref('mart_data_quality') }}
            where dataset = 'events' and check_kind in ('quarantined', 'duplicate_removed')
        ) as quarantined_rows
)

select *
from counts
where raw_rows <> usable_rows + coalesce(quarantined_rows, 0)
