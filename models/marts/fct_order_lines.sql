-- One row per order line, enriched, with the session of its purchase event (null when the
-- purchase event is not among the usable events).
with lines as (
    select * from {{ ref('int_order_lines_enriched') }}
),

purchase_events as (
    select event_id, session_id
    from {{ ref('int_events_sessionized') }}
    where event_type = 'purchase'
)

select
    lines.transaction_id,
    lines.order_id,
    lines.event_id,
    purchase_events.session_id,
    lines.customer_id,
    lines.product_id,
    lines.category,
    lines.price,
    lines.quantity,
    lines.revenue,
    lines.transaction_time,
    lines.transaction_date,
    lines.transaction_hour,
    lines.transaction_weekday,
    lines.transaction_month,
    lines.transaction_month_start,
    lines.price_band,
    lines.age,
    lines.age_band,
    lines.gender,
    lines.city,
    lines.country,
    lines.region
from lines
left join purchase_events
    on purchase_events.event_id = lines.event_id
