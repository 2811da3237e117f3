{#-
    Every raw event row once, checked and ranked among the copies of its event (macro
    shop_events_classified): stg_shop__events reads the usable rows from here and
    stg_shop__events_quarantined the others, so the deduplication of all raw rows is computed
    once per build instead of on every read, and raw rows = usable + quarantined rows here.

    Incremental (delete+insert on event_key_hash; on Spark insert_overwrite of the event_date
    partitions it touches, see keyed_incremental_rows): a build checks only the raw rows loaded
    after the newest loaded_at already here, and re-ranks them together with the rows already
    here that share their event_key (found by its 64-bit hash; a collision only re-ranks a few
    more rows, each partition is the exact key). A late copy of an event is then ranked, and the
    copies already here renumbered, exactly as a full build would.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy=keyed_incremental_strategy(),
    unique_key='event_key_hash',
    partition_by=spark_partition_by('event_date'),
    on_schema_change='fail',
    post_hook=[{'sql': '{{ checkpoint_freed_blocks() }}', 'transaction': false}]
) }}

{% set checked_columns = ['event_id', 'event_time', 'source_event_type', 'product_id',
    'category_id', 'category_code', 'brand', 'price', 'customer_id', 'user_session', 'quantity',
    'device', 'traffic_source', 'page', 'load_source', 'loaded_at', 'event_type', 'price_flag',
    'defect_reason'] %}

{% if is_incremental() %}
with watermark as (
    select coalesce(max(loaded_at), {{ epoch_start() }}) as loaded_at from {{ this }}
),

new_checked as (
    {{ shop_events_checked(source('shop', 'events'),
        "loaded_at > (select loaded_at from watermark)") }}
),

new_keys as (
    select distinct {{ shoplens_hash64('event_key') }} as event_key_hash from new_checked
),

-- the new rows, and the rows already here with the same keys (their event_key recomputed
-- from the checked columns stored here)
pool as (
    select {{ checked_columns | join(', ') }}, event_key from new_checked
    union all
    select {{ checked_columns | join(', ') }}, {{ shop_event_key() }} as event_key
    from {{ this }}
    where event_key_hash in (select new_keys.event_key_hash from new_keys)
),

ranked as (
    select
        *,
        row_number() over (
            partition by event_key order by {{ shop_event_copy_order() }}
        ) as copy_number
    from pool
),

classified as (
    select
        *,
        {{ shop_event_quarantine_reason() }} as quarantine_reason
    from ranked
),
{% else %}
with classified as (
    {{ shop_events_classified(source('shop', 'events')) }}
),
{% endif %}

categorised as (
    {{ shop_events_categorised('classified') }}
),

rebuilt as (
    select
        {{ checked_columns | join(', ') }},
        cast(event_time as date) as event_date,
        category,
        cast(copy_number as {{ dbt.type_bigint() }}) as copy_number,
        quarantine_reason,
        {{ shoplens_hash64('event_key') }} as event_key_hash,
        {{ this_run_started_at() }} as built_at
    from categorised
)

{{ keyed_incremental_rows('rebuilt', 'event_key_hash', 'event_date') }}
