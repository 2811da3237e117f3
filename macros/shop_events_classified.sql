{#-
    Rename, trim and type-check raw events, normalise REES46 event types, and decide for every
    raw row whether it can be used. Returns every raw row (nothing is dropped here) with:
      - event_type: the normalised type (view -> product_view, cart -> add_to_cart), null if unknown
      - copy_number: 1 for the copy of an event_id that is kept (valid copies first, then earliest
        loaded), 2.. for the other copies
      - quarantine_reason: null when the row is usable, else why not (first failing check wins)
    stg_shop__events keeps the rows without a reason, stg_shop__events_quarantined the others.
-#}
{% macro shop_events_classified(source_relation) %}
    with renamed as (
        select
            nullif(trim(event_id), '') as event_id,
            event_time,
            trim(event_type) as source_event_type,
            product_id,
            category_id,
            nullif(lower(trim(category_code)), '') as category_code,
            nullif(trim(brand), '') as brand,
            price,
            user_id as customer_id,
            nullif(trim(user_session), '') as user_session,
            quantity,
            nullif(lower(trim(device)), '') as device,
            nullif(lower(trim(traffic_source)), '') as traffic_source,
            nullif(lower(trim(page)), '') as page,
            source as load_source,
            loaded_at
        from {{ source_relation }}
    ),

    typed as (
        select
            *,
            {{ normalize_event_type('source_event_type') }} as event_type
        from renamed
    ),

    checked as (
        select
            *,
            case
                when event_id is null then 'missing_event_id'
                when event_time is null then 'missing_event_time'
                when event_type is null then 'unknown_event_type'
                when customer_id is null then 'missing_customer_id'
                when event_time > {{ dbt.dateadd('hour', var('future_event_tolerance_hours'), 'loaded_at') }}
                    then 'future_event_time'
                when price <= 0 then 'non_positive_price'
                when quantity <= 0 then 'non_positive_quantity'
            end as defect_reason
        from typed
    ),

    ranked as (
        select
            *,
            row_number() over (
                partition by event_id
                order by
                    case when defect_reason is null then 0 else 1 end,
                    loaded_at, event_time, user_session, price, quantity, device, traffic_source
            ) as copy_number
        from checked
    )

    select
        *,
        coalesce(
            defect_reason,
            case when copy_number > 1 then 'duplicate_event_id' end
        ) as quarantine_reason
    from ranked
{% endmacro %}


{#- Map a raw event type to the shoplens vocabulary; null for anything unknown. -#}
{% macro normalize_event_type(column) %}
    case {{ column }}
        when 'view' then 'product_view'
        when 'cart' then 'add_to_cart'
        when 'page_view' then 'page_view'
        when 'product_view' then 'product_view'
        when 'add_to_cart' then 'add_to_cart'
        when 'remove_from_cart' then 'remove_from_cart'
        when 'checkout' then 'checkout'
        when 'purchase' then 'purchase'
    end
{% endmacro %}
