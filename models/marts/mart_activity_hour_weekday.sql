-- Sessions, events and conversions by start weekday and hour (UTC): the activity heatmap.
select
    start_weekday,
    start_hour,
    count(*) as sessions,
    {{ sum_int('events') }} as events,
    {{ sum_int('product_views') }} as product_views,
    {{ sum_int('cart_additions') }} as cart_additions,
    count(case when purchase_made then 1 end) as purchase_sessions,
    sum(revenue) as revenue,
    count(case when purchase_made then 1 end) * 1.0 / count(*) as conversion_rate
from {{ ref('fct_sessions') }}
group by start_weekday, start_hour
