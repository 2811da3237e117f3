{#-
    Rename, trim and type-check raw events, normalise REES46 event types, and decide for every
    raw row whether it can be used. Returns every raw row (nothing is dropped here) with:
      - event_type: the normalised type (view -> product_view, cart -> add_to_cart), null if unknown
      - copy_number: 1 for the copy of an event_id that is kept (valid copies first, then earliest
        loaded), 2.. for the other copies
      - quarantine_reason: null when the row is usable, else why not (first failing check wins)
    stg_shop__events keeps the rows without a reason, stg_shop__events_quarantined the others.
    `where` optionally restricts the raw rows read (incremental builds pass the ids of newly
    loaded rows, so that every copy of those ids, old and new, is ranked together).
-#}
{% macro shop_events_classified(source_relation, where=none) %}
    {%- set id = "nullif(trim(event_id), '')" -%}
    {%- set restrict = "(" ~ where ~ ") and " if where else "" -%}
    -- Only ids that occur more than once (and missing ids) need ranking, and only their rows
    -- are read a second time: a window over every row would sort the whole table, and a CTE
    -- read by two branches would be copied.
    -- Grouping 64-bit hashes of the ids is much cheaper than grouping the strings; a hash
    -- collision only sends a few more rows through the exact ranking below.
    with duplicated_ids as (
        select {{ shoplens_hash64(id) }} as id_hash
        from {{ source_relation }}
        where {{ restrict }}{{ id }} is not null
        group by {{ shoplens_hash64(id) }}
        having count(*) > 1
    ),

    single_copies as (
        select checked.*, 1 as copy_number
        from (
            {{ shop_events_checked(source_relation, where) }}
        ) as checked
        where event_id is not null
            and {{ shoplens_hash64('event_id') }} not in (select id_hash from duplicated_ids)
    ),

    ranked_copies as (
        select
            checked.*,
            row_number() over (
                partition by event_id
                order by
                    case when defect_reason is null then 0 else 1 end,
                    loaded_at, event_time, user_session, price, quantity, device, traffic_source
            ) as copy_number
        from (
            {{ shop_events_checked(source_relation, restrict ~ "(" ~ id ~ " is null or "
                ~ shoplens_hash64(id) ~ " in (select id_hash from duplicated_ids))") }}
        ) as checked
    ),

    ranked as (
        select * from single_copies
        union all
        select * from ranked_copies
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


{#-
    Raw events renamed, trimmed and checked row by row (no deduplication): every column of the
    raw row plus event_type (normalised, null if unknown) and defect_reason (null when the row
    itself is fine). `where` optionally restricts the raw rows read.
-#}
{% macro shop_events_checked(source_relation, where=none) %}
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
        {%- if where %}
        where {{ where }}
        {%- endif %}
    ),

    typed as (
        select
            *,
            {{ normalize_event_type('source_event_type') }} as event_type
        from renamed
    ),

    row_checked as (
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
    )

    select * from row_checked
{% endmacro %}


{#-
    The usable events (stg_shop__events): the kept copy of every event_id without a quarantine
    reason, with its category named from the seed categories. `where` as in
    shop_events_classified; `categories_relation` replaces the seed (ml.feature_definitions
    renders this macro over placeholders for the live scorer).
-#}
{% macro shop_events_staged(source_relation, where=none, categories_relation=none) %}
    with classified as (
        {{ shop_events_classified(source_relation, where) }}
    ),

    usable as (
        select * from classified
        where quarantine_reason is null
    ),

    categories as (
        select * from {{ categories_relation or ref('categories') }}
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
{% endmacro %}
