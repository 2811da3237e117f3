-- Every raw event row that staging does not use, with the reason: nothing is lost silently.
-- A view over the quarantined rows of stg_shop__events_classified, where the ranking is stored.
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
from {{ ref('stg_shop__events_classified') }}
where quarantine_reason is not null
