-- Category popularity: funnel counts from events and sales from order lines, with shares and
-- ranks. Order-line columns are 0 when the warehouse has no transactions (REES46 imports).
with events as (
    select
        category,
        count(case when event_type = 'product_view' then 1 end) as product_views,
        count(case when event_type = 'add_to_cart' then 1 end) as cart_additions,
        count(case when event_type = 'purchase' then 1 end) as purchases,
        cast(
            coalesce(sum(case when event_type = 'purchase' then quantity end), 0)
            as {{ dbt.type_bigint() }}
        ) as units_purchased,
        coalesce(sum(purchase_revenue), 0) as event_revenue,
        count(distinct case when event_type = 'purchase' then customer_id end) as buyers
    from {{ ref('int_events_sessionized') }}
    where category is not null
    group by category
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
