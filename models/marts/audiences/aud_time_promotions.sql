-- Time-targeted promotions ("happy hours"): hour x weekday x category cells of the last
-- var('audience_promotion_days') days with high traffic and low conversion, ranked by the
-- purchases they miss. See _audiences__models.yml for the rules.
{%- set window_days = var('audience_promotion_days') | int %}

with as_of as (
    select
        max(session_end) as as_of_time,
        {{ timestamp_add('day', -window_days, 'max(session_end)') }} as window_start
    from {{ ref('fct_sessions') }}
),

-- Each session once per category it had a product event in (time_promotion_sessions, kept
-- up to date incrementally); bought = it bought there.
cells as (
    select
        start_weekday,
        start_hour,
        category,
        count(*) as sessions,
        {{ sum_int('bought') }} as purchase_sessions
    from {{ ref('time_promotion_sessions') }}
    where session_start >= (select as_of.window_start from as_of)
    group by start_weekday, start_hour, category
),

categories as (
    select
        category,
        cast({{ sum_int('purchase_sessions') }} as double) / sum(sessions)
            as category_conversion_rate,
        median(sessions) as median_cell_sessions
    from cells
    group by category
),

candidates as (
    select
        cells.start_weekday,
        cells.start_hour,
        cells.category,
        cells.sessions,
        cells.purchase_sessions,
        cast(cells.purchase_sessions as double) / cells.sessions as conversion_rate,
        categories.category_conversion_rate,
        categories.median_cell_sessions,
        cells.sessions * categories.category_conversion_rate
        - cells.purchase_sessions as missed_purchase_sessions
    from cells
    inner join categories
        on categories.category = cells.category
    where cells.sessions >= {{ var('audience_promotion_min_sessions') | int }}
        and cells.sessions >= categories.median_cell_sessions
        and cast(cells.purchase_sessions as double) / cells.sessions
        < categories.category_conversion_rate
)

select
    candidates.start_weekday,
    case candidates.start_weekday
        when 1 then 'Monday'
        when 2 then 'Tuesday'
        when 3 then 'Wednesday'
        when 4 then 'Thursday'
        when 5 then 'Friday'
        when 6 then 'Saturday'
        when 7 then 'Sunday'
    end as weekday_name,
    candidates.start_hour,
    candidates.category,
    candidates.sessions,
    candidates.purchase_sessions,
    candidates.conversion_rate,
    candidates.category_conversion_rate,
    candidates.median_cell_sessions,
    candidates.missed_purchase_sessions,
    cast(row_number() over (
        order by
            candidates.missed_purchase_sessions desc,
            candidates.sessions desc,
            candidates.start_weekday asc,
            candidates.start_hour asc,
            candidates.category asc
    ) as {{ dbt.type_bigint() }}) as promotion_rank,
    as_of.window_start,
    as_of.as_of_time
from candidates
cross join as_of
