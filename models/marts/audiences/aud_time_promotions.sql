-- Time-targeted promotions ("happy hours"): hour x weekday x category cells of the last
-- var('audience_promotion_days') days with high traffic and low conversion, ranked by the
-- purchases they miss. See _audiences__models.yml for the rules.
{%- set window_days = var('audience_promotion_days') | int %}

with events as (
    select session_id, category, event_type
    from {{ ref('fct_events') }}
    where product_id is not null and category is not null
),

sessions as (
    select session_id, session_start, session_end, start_weekday, start_hour
    from {{ ref('fct_sessions') }}
),

as_of as (
    select
        max(session_end) as as_of_time,
        {{ timestamp_add('day', -window_days, 'max(session_end)') }} as window_start
    from sessions
),

-- Each session once per category it had a product event in; bought = it bought there.
session_categories as (
    select
        session_id,
        category,
        max(case when event_type = 'purchase' then 1 else 0 end) as bought
    from events
    group by session_id, category
),

cells as (
    select
        sessions.start_weekday,
        sessions.start_hour,
        session_categories.category,
        count(*) as sessions,
        {{ sum_int('session_categories.bought') }} as purchase_sessions
    from session_categories
    inner join sessions
        on sessions.session_id = session_categories.session_id
    cross join as_of
    where sessions.session_start >= as_of.window_start
    group by sessions.start_weekday, sessions.start_hour, session_categories.category
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
