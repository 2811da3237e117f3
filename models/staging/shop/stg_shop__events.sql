-- One row per usable event: deduplicated by event_id, event types normalised, category named.
with classified as (
    {{ shop_events_classified(source('shop', 'events')) }}
),

usable as (
    select * from classified
    where quarantine_reason is null
),

categories as (
    select * from {{ ref('categories') }}
)

select
    usable.event_id,
    usable.event_time,
    cast(usable.event_time as date) as event_date,
    usable.event_type,
    usable.source_event_type,
    usable.product_id,
    usable.category_id,
    usable.category_code,
    case
        when usable.product_id is not null or usable.category_code is not null
            then coalesce(categories.category_name, 'Other')
    end as category,
    usable.brand,
    usable.price,
    usable.customer_id,
    usable.user_session,
    case
        when usable.event_type in ('add_to_cart', 'remove_from_cart', 'purchase')
            then coalesce(usable.quantity, 1)
        else usable.quantity
    end as quantity,
    coalesce(usable.device, 'unknown') as device,
    coalesce(usable.traffic_source, 'unknown') as traffic_source,
    usable.page,
    usable.load_source,
    usable.loaded_at
from usable
left join categories
    on categories.category_top_level = {{ dbt.split_part('usable.category_code', "'.'", 1) }}
