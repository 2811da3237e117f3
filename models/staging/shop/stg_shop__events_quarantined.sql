-- Every raw event row that staging does not use, with the reason: nothing is lost silently.
with classified as (
    {{ shop_events_classified(source('shop', 'events')) }}
)

select
    {{ dbt.concat([
        "coalesce(event_id, '(missing)')", "'#'", "cast(copy_number as " ~ dbt.type_string() ~ ")"
    ]) }} as quarantine_id,
    event_id,
    copy_number,
    quarantine_reason,
    event_time,
    source_event_type,
    product_id,
    category_code,
    price,
    customer_id,
    user_session,
    quantity,
    device,
    traffic_source,
    load_source,
    loaded_at
from classified
where quarantine_reason is not null
