-- Sessions, events and conversions by start weekday and hour (UTC): the activity heatmap.
-- Only complete weeks (Monday to Sunday, from the first session date to the last day that is
-- over) count, so every weekday is counted the same number of times and a partial first or last
-- week, or a burst streamed today, does not tilt it; data spanning no complete week counts every
-- day.
with sessions as (
    select * from {{ ref('fct_sessions') }}
),

-- the last day that is over: the latest session date, or yesterday when sessions (a streamed
-- burst) have already started today
days as (
    select
        min(session_date) as first_day,
        least(
            max(session_date),
            cast({{ dbt.dateadd('day', -1, 'current_date') }} as date)
        ) as last_day
    from sessions
),

bounds as (
    select
        cast({{ dbt.date_trunc('week', dbt.dateadd('day', 6, 'first_day')) }} as date)
            as weeks_from,
        cast({{ dbt.date_trunc('week', dbt.dateadd('day', 1, 'last_day')) }} as date)
            as weeks_to
    from days
),

weeks as (
    select
        weeks_from,
        weeks_to,
        case
            when weeks_to > weeks_from
                then cast(
                    {{ dbt.datediff('weeks_from', 'weeks_to', 'day') }} / 7 as {{ dbt.type_int() }}
                )
            else 0
        end as complete_weeks
    from bounds
),

counted as (
    select sessions.*, weeks.complete_weeks
    from sessions
    cross join weeks
    where weeks.complete_weeks = 0
        or (sessions.session_date >= weeks.weeks_from and sessions.session_date < weeks.weeks_to)
)

select
    start_weekday,
    start_hour,
    count(*) as sessions,
    {{ sum_int('events') }} as events,
    {{ sum_int('product_views') }} as product_views,
    {{ sum_int('cart_additions') }} as cart_additions,
    count(case when purchase_made then 1 end) as purchase_sessions,
    sum(revenue) as revenue,
    cast(count(case when purchase_made then 1 end) as double) / count(*) as conversion_rate,
    min(complete_weeks) as complete_weeks
from counted
group by start_weekday, start_hour
