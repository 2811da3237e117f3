-- One row per usable event with its session: the queryable face of int_events_sessionized.
-- A view, not a table: it has the same rows as its incremental parent, and a second copy of the
-- largest table would double the build time and the file size.
{{ config(materialized='view') }}

select
    event_id,
    session_id,
    user_session,
    customer_id,
    event_time,
    event_date,
    event_type,
    source_event_type,
    product_id,
    category_id,
    category_code,
    category,
    brand,
    price,
    price_flag,
    quantity,
    purchase_revenue,
    device,
    traffic_source,
    page,
    session_source,
    load_source,
    loaded_at,
    built_at
from {{ ref('int_events_sessionized') }}
