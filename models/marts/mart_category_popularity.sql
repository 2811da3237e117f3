-- Category popularity: funnel counts from events and sales from order lines, with shares and
-- ranks. Order-line columns are 0 when the warehouse has no transactions (REES46 imports).
-- The event counts are mart_funnel_daily's summed over its days (each event with a category counts
-- there once, in its session's activity in that category), so the events are not aggregated a
-- second time; only the distinct buyers, which do not add up over days, read the purchases. On an
-- incremental build the sums are as exact as mart_funnel_daily's days (see its note on a day a
-- late event leaves without activity).
with funnel as (
    select
        category,
        {{ sum_int('product_views') }} as product_views,
        {{ sum_int('cart_additions') }} as cart_additions,
        {{ sum_int('purchases') }} as purchases,
        {{ sum_int('units_purchased') }} as units_purchased,
        sum(revenue) as event_revenue
    from {{ ref('mart_funnel_daily') }}
    group by category
),

buyers as (
    select
        category,
        count(distinct customer_id) as buyers
    from {{ ref('int_events_sessionized') }}
    where
        category is not null
        and event_type = 'purchase'
    group by category
),

events as (
    select
        funnel.category,
        funnel.product_views,
        funnel.cart_additions,
        funnel.purchases,
        funnel.units_purchased,
        funnel.event_revenue,
        coalesce(buyers.buyers, 0) as buyers
    from funnel
    left join buyers
        on buyers.category = funnel.category
),

lines as (
    select
        category,
        count(*) as order_lines,
        cast(sum(quantity) as {{ dbt.type_bigint() }}) as order_line_units,
        sum(revenue) as order_line_revenue
    from {{ ref('fct_order_lines') }}
    group by category
)

select
    events.category,
    events.product_views,
    events.cart_additions,
    events.purchases,
    events.units_purchased,
    events.event_revenue,
    events.buyers,
    coalesce(lines.order_lines, 0) as order_lines,
    coalesce(lines.order_line_units, 0) as order_line_units,
    coalesce(lines.order_line_revenue, 0) as order_line_revenue,
    coalesce(events.event_revenue / nullif(sum(events.event_revenue) over (), 0), 0)
        as revenue_share,
    coalesce(cast(events.purchases as double) / nullif(events.product_views, 0), 0)
        as view_to_purchase_rate,
    cast(row_number() over (
        order by events.purchases desc, events.event_revenue desc, events.category asc
    ) as {{ dbt.type_bigint() }}) as popularity_rank
from events
left join lines
    on lines.category = events.category
