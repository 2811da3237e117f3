{#-
    Rename, trim and type-check raw events, normalise event types, and decide for every raw row
    whether it can be used. Returns every raw row (nothing is dropped here) with:
      - event_type: the normalised type (case and surrounding whitespace ignored; view ->
        product_view, cart -> add_to_cart), null if unknown
      - price_flag: non_positive_price or non_finite_price when the price cannot be used (the
        event is kept, its staged price is null), else null
      - event_key: what identifies an event for deduplication: its event_id, except for REES46
        rows, whose ids are synthetic (file and line): their key is their content (rees46_row_key),
        so an exact copy of a REES46 row is a duplicate however it got its id
      - copy_number: 1 for the copy of an event_key that is kept (valid copies first, then earliest
        loaded, then lowest event_id), 2.. for the other copies
      - quarantine_reason: null when the row is usable, else why not (first failing check wins)
    stg_shop__events keeps the rows without a reason, stg_shop__events_quarantined the others.
    `where` optionally restricts the raw rows read.
-#}
{% macro shop_events_classified(source_relation, where=none) %}
    -- Only keys that occur more than once (and missing keys) need ranking, and only their rows
    -- are read a second time: a window over every row would sort the whole table, and a CTE
    -- read by two branches would be copied.
    -- Grouping 64-bit hashes of the keys is much cheaper than grouping the strings; a hash
    -- collision only sends a few more rows through the exact ranking below.
    with duplicated_keys as (
        select {{ shoplens_hash64('event_key') }} as key_hash
        from (
            {{ shop_events_checked(source_relation, where) }}
        ) as checked
        where event_key is not null
        group by {{ shoplens_hash64('event_key') }}
        having count(*) > 1
    ),

    single_copies as (
        select checked.*, 1 as copy_number
        from (
            {{ shop_events_checked(source_relation, where) }}
        ) as checked
        where event_key is not null
            and {{ shoplens_hash64('event_key') }} not in (select key_hash from duplicated_keys)
    ),

    ranked_copies as (
        select
            checked.*,
            row_number() over (
                partition by event_key order by {{ shop_event_copy_order() }}
            ) as copy_number
        from (
            {{ shop_events_checked(source_relation, where) }}
        ) as checked
        where event_key is null
            or {{ shoplens_hash64('event_key') }} in (select key_hash from duplicated_keys)
    ),

    ranked as (
        select * from single_copies
        union all
        select * from ranked_copies
    )

    select
        *,
        {{ shop_event_quarantine_reason() }} as quarantine_reason
    from ranked
{% endmacro %}


{#- The order of the copies of one event_key: defect-free copies first, then the earliest
    loaded (ties broken by the other columns, then event_id); copy 1 is the one kept. -#}
{% macro shop_event_copy_order() -%}
    case when defect_reason is null then 0 else 1 end,
    loaded_at, event_time, user_session, price, quantity, device, traffic_source, event_id
{%- endmacro %}


{#- Why a ranked row is not used: its own defect, else being a later copy; null when usable. -#}
{% macro shop_event_quarantine_reason() -%}
    coalesce(
        defect_reason,
        case
            when copy_number > 1 and load_source = 'rees46' then 'duplicate_row'
            when copy_number > 1 then 'duplicate_event_id'
        end
    )
{%- endmacro %}


{#- What identifies an event for deduplication (see shop_events_classified), over the columns
    of checked rows. -#}
{% macro shop_event_key() -%}
    case
        when load_source = 'rees46'
            then {{ rees46_row_key(price_column='case when price_flag is null then price end') }}
        else event_id
    end
{%- endmacro %}


{#- Map a raw event type to the shoplens vocabulary, ignoring case and surrounding whitespace
    (VIEW, ' Cart\t' and 'purchase\n' are known types); null for anything unknown. -#}
{% macro normalize_event_type(column) %}
    case lower({{ trim_whitespace(column) }})
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


{#- Why a price cannot be used (non_finite_price: NaN or infinite; non_positive_price: zero or
    negative), or null when it can (or is missing). -#}
{% macro price_flag(column) %}
    case
        when {{ column }} is null then null
        when not {{ is_finite(column) }} then 'non_finite_price'
        when {{ column }} <= 0 then 'non_positive_price'
    end
{% endmacro %}


{#-
    The identity of a REES46 row: its REES46 fields as staged (event type normalised, price null
    when flagged, with the flag; `price_column` names the staged price). Two REES46 rows with the same key are the same event loaded
    twice (an exact duplicate line, or the same file loaded again). Used by shop_event_key.
-#}
{% macro rees46_row_key(price_column='price') %}
    {%- set parts = ["'rees46'"] -%}
    {%- for column in ['event_time', 'event_type', 'product_id', 'category_id', 'category_code',
                       'brand', price_column, 'price_flag', 'customer_id', 'user_session'] -%}
        {%- do parts.append("'|'") -%}
        {%- set text = "cast(" ~ column ~ " as " ~ dbt.type_string() ~ ")" -%}
        {%- do parts.append("coalesce(" ~ text ~ ", '')") -%}
    {%- endfor -%}
    {{ dbt.concat(parts) }}
{%- endmacro %}


{#-
    Raw events renamed, trimmed and checked row by row (no deduplication): every column of the
    raw row plus event_type (normalised, null if unknown), price_flag, event_key and
    defect_reason (null when the row itself is fine). An unusable price is not a defect: the
    event is kept and flagged. `where` optionally restricts the raw rows read.
-#}
{% macro shop_events_checked(source_relation, where=none) %}
    with renamed as (
        select
            nullif(trim(event_id), '') as event_id,
            event_time,
            {{ trim_whitespace('event_type') }} as source_event_type,
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
            {{ normalize_event_type('source_event_type') }} as event_type,
            {{ price_flag('price') }} as price_flag
        from renamed
    ),

    keyed as (
        select
            *,
            {{ shop_event_key() }} as event_key
        from typed
    ),

    row_checked as (
        select
            *,
            case
                when event_id is null then 'missing_event_id'
                when event_time is null then 'missing_event_time'
                when event_type is null then 'unknown_event_type'
                when customer_id is null then 'missing_customer_id'
                when event_time > {{ timestamp_add('hour', var('future_event_tolerance_hours'), 'loaded_at') }}
                    then 'future_event_time'
                when quantity <= 0 then 'non_positive_quantity'
            end as defect_reason
        from keyed
    )

    select * from row_checked
{% endmacro %}


{#-
    The usable events (stg_shop__events): the kept copy of every event_key without a quarantine
    reason, its price null when flagged, with its category named from the seed categories.
    `where` as in shop_events_classified; `categories_relation` replaces the seed
    (ml.feature_definitions renders this macro over placeholders for the live scorer).
-#}
{% macro shop_events_staged(source_relation, where=none, categories_relation=none) %}
    with classified as (
        {{ shop_events_classified(source_relation, where) }}
    ),

    categorised as (
        {{ shop_events_categorised('classified', categories_relation) }}
    )

    {{ shop_events_usable('categorised') }}
{% endmacro %}


{#- Rows of `relation` (classified events) with their category named from the seed categories
    (or `categories_relation`): Other for product events whose category is unknown or missing,
    null for events without a product. -#}
{% macro shop_events_categorised(relation, categories_relation=none) %}
    select
        events.*,
        case
            when events.product_id is not null or events.category_code is not null
                then coalesce(categories.category_name, 'Other')
        end as category
    from {{ relation }} as events
    left join {{ categories_relation or ref('categories') }} as categories
        on categories.category_top_level = {{ dbt.split_part('events.category_code', "'.'", 1) }}
{% endmacro %}


{#- The columns of stg_shop__events from categorised classified rows: the usable ones, price
    null when flagged, quantity 1 for cart and purchase events without one. -#}
{% macro shop_events_usable(relation) %}
    select
        event_id,
        event_time,
        cast(event_time as date) as event_date,
        event_type,
        source_event_type,
        product_id,
        category_id,
        category_code,
        category,
        brand,
        case when price_flag is null then price end as price,
        price_flag,
        customer_id,
        user_session,
        case
            when event_type in ('add_to_cart', 'remove_from_cart', 'purchase')
                then coalesce(quantity, 1)
            else quantity
        end as quantity,
        coalesce(device, 'unknown') as device,
        coalesce(traffic_source, 'unknown') as traffic_source,
        page,
        load_source,
        loaded_at
    from {{ relation }}
    where quarantine_reason is null
{% endmacro %}
