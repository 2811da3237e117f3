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
    -- read by two branches would be copied. Rows are grouped by a cheap 64-bit bucket of their
    -- key (shop_event_key_bucket: equal keys, equal buckets; no text is built), so the text
    -- key is built only for the final event_key_hash and for the few rows ranked exactly below.
    with duplicated_buckets as (
        select {{ shop_event_key_bucket() }} as key_bucket
        from (
            {{ shop_events_checked(source_relation, where, with_key=false) }}
        ) as checked
        group by {{ shop_event_key_bucket() }}
        having count(*) > 1
    ),

    single_copies as (
        select checked.*, {{ shop_event_key() }} as event_key, 1 as copy_number
        from (
            {{ shop_events_checked(source_relation, where, with_key=false) }}
        ) as checked
        where {{ shop_event_key_bucket() }} not in (
            select duplicated_buckets.key_bucket from duplicated_buckets
            where duplicated_buckets.key_bucket is not null
        )
    ),

    ranked_copies as (
        select
            keyed.*,
            row_number() over (
                partition by event_key order by {{ shop_event_copy_order() }}
            ) as copy_number
        from (
            select checked.*, {{ shop_event_key() }} as event_key
            from (
                {{ shop_events_checked(source_relation, where, with_key=false) }}
            ) as checked
            where {{ shop_event_key_bucket() }} is null
                or {{ shop_event_key_bucket() }} in (
                    select duplicated_buckets.key_bucket from duplicated_buckets
                )
        ) as keyed
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


{#-
    A 64-bit bucket of a checked row's event_key (shop_event_key) computed from the typed columns
    without building the text: rows with equal keys get equal buckets (a collision only sends a
    few more rows through the exact ranking); null when the key is null. A REES46 key joins ten
    fields with '|', so only a '|' inside a text field (category_code, brand, user_session) can
    make two different rows' keys equal: a key without one (exactly ten '|') is bucketed by all
    ten fields, one with more by the four fields before the first text field (event_time,
    event_type, product_id, category_id, which never hold a '|'). Any other row's key is its
    event_id; one spelled like a REES46 key ('rees46|...') is bucketed by the fields read back
    from it, so it meets the REES46 rows with that key.
-#}
{% macro shop_event_key_bucket() -%}
    {%- set fields = [
        ('event_time', dbt.type_timestamp()), ('event_type', none), ('product_id', dbt.type_bigint()),
        ('category_id', dbt.type_bigint()), ('category_code', none), ('brand', none),
        ('case when price_flag is null then price end', 'double'), ('price_flag', none),
        ('customer_id', dbt.type_bigint()), ('user_session', none)] -%}
    {%- set parsed = [] -%}
    {%- for column, type in fields -%}
        {%- set part = "nullif(" ~ dbt.split_part('event_id', "'|'", loop.index + 1) ~ ", '')" -%}
        {%- do parsed.append(shoplens_try_cast(part, type) if type else part) -%}
    {%- endfor -%}
    {%- set separators = "length(event_id) - length(replace(event_id, '|', ''))" -%}
    case
        when load_source = 'rees46' and (
                category_code like '%|%' or brand like '%|%' or user_session like '%|%'
            )
            then {{ shoplens_hash64(fields[:4] | map('first') | join(', ')) }}
        when load_source = 'rees46'
            then {{ shoplens_hash64(fields | map('first') | join(', ')) }}
        when event_id is null then null
        when event_id like 'rees46|%' and {{ separators }} = 10
            then {{ shoplens_hash64(parsed | join(', ')) }}
        when event_id like 'rees46|%' and {{ separators }} > 10
            then {{ shoplens_hash64(parsed[:4] | join(', ')) }}
        else {{ shoplens_hash64('event_id') }}
    end
{%- endmacro %}


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
    {#- one concat_ws call (DuckDB and Spark alike; no argument is null) instead of dbt.concat's
        chain of `||`, which builds an intermediate string per field: the same text, about 2.5 s
        less CPU per 7.8M rows -#}
    {%- set parts = ["'rees46'"] -%}
    {%- for column in ['event_time', 'event_type', 'product_id', 'category_id', 'category_code',
                       'brand', price_column, 'price_flag', 'customer_id', 'user_session'] -%}
        {%- set text = "cast(" ~ column ~ " as " ~ dbt.type_string() ~ ")" -%}
        {%- do parts.append("coalesce(" ~ text ~ ", '')") -%}
    {%- endfor -%}
    concat_ws('|', {{ parts | join(', ') }})
{%- endmacro %}


{#-
    Raw events renamed, trimmed and checked row by row (no deduplication): every column of the
    raw row plus event_type (normalised, null if unknown), price_flag, event_key (unless
    `with_key` is false) and defect_reason (null when the row itself is fine). An unusable price
    is not a defect: the event is kept and flagged. `where` optionally restricts the raw rows
    read.
-#}
{% macro shop_events_checked(source_relation, where=none, with_key=true) %}
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
            *{% if with_key %},
            {{ shop_event_key() }} as event_key
            {%- endif %}
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
