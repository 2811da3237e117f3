-- Every raw order line that staging does not use, with the reason.
with classified as (
    {{ shop_transactions_classified(source('shop', 'transactions')) }}
)

select
    {{ dbt.concat([
        "coalesce(transaction_id, '(missing)')",
        "'#'",
        "cast(copy_number as " ~ dbt.type_string() ~ ")",
    ]) }} as quarantine_id,
    transaction_id,
    copy_number,
    quarantine_reason,
    order_id,
    event_id,
    customer_id,
    product_id,
    price,
    quantity,
    transaction_time,
    load_source,
    loaded_at
from classified
where quarantine_reason is not null
