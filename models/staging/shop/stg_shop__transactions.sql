-- One row per usable order line: deduplicated by transaction_id, category named, revenue computed.
with classified as (
    {{ shop_transactions_classified(source('shop', 'transactions')) }}
),

usable as (
    select * from classified
    where quarantine_reason is null
),

categories as (
    select * from {{ ref('categories') }}
)

select
    usable.transaction_id,
    usable.order_id,
    usable.event_id,
    usable.customer_id,
    usable.product_id,
    usable.category_code,
    coalesce(categories.category_name, 'Other') as category,
    usable.price,
    usable.quantity,
    usable.price * usable.quantity as revenue,
    usable.transaction_time,
    usable.load_source,
    usable.loaded_at
from usable
left join categories
    on categories.category_top_level = {{ dbt.split_part('usable.category_code', "'.'", 1) }}
