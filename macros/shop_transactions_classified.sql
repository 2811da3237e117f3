{#-
    Rename and check raw order lines. Returns every raw row with copy_number (1 = the copy of a
    transaction_id that is kept: valid first, then earliest loaded) and quarantine_reason (null
    when usable). stg_shop__transactions keeps the usable rows, stg_shop__transactions_quarantined
    the others.
-#}
{% macro shop_transactions_classified(source_relation) %}
    with renamed as (
        select
            nullif(trim(transaction_id), '') as transaction_id,
            nullif(trim(order_id), '') as order_id,
            nullif(trim(event_id), '') as event_id,
            customer_id,
            product_id,
            nullif(lower(trim(category_code)), '') as category_code,
            price,
            quantity,
            transaction_time,
            source as load_source,
            loaded_at
        from {{ source_relation }}
    ),

    checked as (
        select
            *,
            case
                when transaction_id is null then 'missing_transaction_id'
                when transaction_time is null then 'missing_transaction_time'
                when price is null or not {{ is_finite('price') }} or price <= 0 then 'invalid_price'
                when quantity is null or quantity <= 0 then 'invalid_quantity'
            end as defect_reason
        from renamed
    ),

    ranked as (
        select
            *,
            cast(row_number() over (
                partition by transaction_id
                order by
                    case when defect_reason is null then 0 else 1 end,
                    loaded_at, transaction_time, event_id, price, quantity
            ) as {{ dbt.type_bigint() }}) as copy_number
        from checked
    )

    select
        *,
        coalesce(
            defect_reason,
            case when copy_number > 1 then 'duplicate_transaction_id' end
        ) as quarantine_reason
    from ranked
{% endmacro %}
