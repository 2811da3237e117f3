-- One row per customer with sessions: RFM, value, engagement and funnel behaviour. Dates are
-- measured against the data's as-of time (the latest session end), so a rebuild on the same data
-- gives the same values whatever the wall clock says. The customer segments (models/ml/segment_*.py
-- through shoplens.ml.reuse.SEGMENT_COLUMNS) are fitted on its per-session rates.
with sessions as (
    select * from {{ ref('int_sessions_aggregated') }}
    where customer_id is not null
),

customers as (
    select customer_id, signup_date from {{ ref('stg_shop__customers') }}
),

as_of as (
    select max(session_end) as as_of_time from sessions
),

per_customer as (
    select
        customer_id,
        min(session_start) as first_session_start,
        max(session_start) as last_session_start,
        max(case when purchase_made then session_start end) as last_purchase_start,
        count(*) as sessions,
        count(case when purchase_made then 1 end) as purchase_sessions,
        count(case when cart_additions > 0 then 1 end) as cart_sessions,
        count(case when cart_abandoned then 1 end) as abandoned_cart_sessions,
        sum(revenue) as lifetime_value,
        {{ sum_int('units_purchased') }} as units_purchased,
        {{ sum_int('product_views') }} as product_views,
        {{ sum_int('cart_additions') }} as cart_additions,
        {{ sum_int('cart_removals') }} as cart_removals,
        {{ sum_int('pages_visited') }} as pages_visited,
        avg(session_duration_seconds) as avg_session_seconds,
        avg(pages_visited) as avg_pages_per_session,
        avg(product_views) as avg_product_views_per_session,
        cast(sum(session_duration_seconds) as double) / nullif(sum(pages_visited), 0)
            as avg_seconds_per_page
    from sessions
    group by customer_id
)

select
    per_customer.customer_id,
    per_customer.first_session_start,
    per_customer.last_session_start,
    per_customer.last_purchase_start,
    {{ days_between('per_customer.last_session_start', 'as_of.as_of_time') }} as recency_days,
    {{ days_between('per_customer.last_purchase_start', 'as_of.as_of_time') }}
        as purchase_recency_days,
    per_customer.purchase_sessions as frequency,
    coalesce(per_customer.lifetime_value / nullif(per_customer.purchase_sessions, 0), 0)
        as monetary,
    per_customer.lifetime_value,
    {{ days_between(
        'coalesce(customers.signup_date, cast(per_customer.first_session_start as date))',
        'as_of.as_of_time'
    ) }} as tenure_days,
    per_customer.sessions,
    per_customer.purchase_sessions,
    per_customer.cart_sessions,
    per_customer.abandoned_cart_sessions,
    per_customer.units_purchased,
    per_customer.product_views,
    per_customer.cart_additions,
    per_customer.cart_removals,
    per_customer.pages_visited,
    per_customer.avg_session_seconds,
    per_customer.avg_session_seconds / 60.0 as avg_session_minutes,
    per_customer.avg_pages_per_session,
    per_customer.avg_product_views_per_session,
    coalesce(per_customer.avg_seconds_per_page, 0) as avg_seconds_per_page,
    cast(per_customer.cart_additions as double) / per_customer.sessions
        as cart_additions_per_session,
    cast(per_customer.cart_sessions as double) / per_customer.sessions as cart_session_rate,
    cast(per_customer.abandoned_cart_sessions as double) / per_customer.sessions
        as abandoned_session_rate,
    coalesce(
        cast(per_customer.abandoned_cart_sessions as double)
        / nullif(per_customer.cart_sessions, 0),
        0
    ) as cart_abandonment_rate,
    cast(per_customer.purchase_sessions as double) / per_customer.sessions as purchase_rate,
    as_of.as_of_time
from per_customer
cross join as_of
left join customers
    on customers.customer_id = per_customer.customer_id
