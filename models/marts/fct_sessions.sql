-- One row per session: the descriptive session table (outcome included). A view: the rows live
-- in the incremental int_sessions_aggregated; a second copy would be rebuilt on every run.
{{ config(materialized='view') }}

select
    session_id,
    user_session,
    customer_id,
    session_source,
    session_start,
    session_end,
    session_date,
    events,
    page_views,
    product_views,
    distinct_products_viewed,
    distinct_categories,
    cart_additions,
    cart_units,
    cart_removals,
    checkouts,
    purchases,
    units_purchased,
    revenue,
    pages_visited,
    session_duration_seconds,
    time_per_page_seconds,
    dominant_category,
    device,
    traffic_source,
    start_hour,
    start_weekday,
    start_month,
    checkout_reached,
    purchase_made,
    cart_abandoned,
    built_at
from {{ ref('int_sessions_aggregated') }}
