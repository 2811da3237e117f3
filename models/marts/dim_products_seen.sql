{#-
    The input of dim_products from events: per product seen in int_events_sessionized, its
    latest category, category code and brand, its highest and median price and its activity.

    Incremental (delete+insert on product_id; on Spark insert_overwrite of the category
    partitions it touches, see keyed_incremental_rows): a build recomputes, from all their
    events, the products of the events int_events_sessionized wrote (built_at) after this
    table's newest built_at. A median does not add up, so each touched product is read whole.
    Events are never removed from int_events_sessionized: a product seen once stays seen.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy=keyed_incremental_strategy(),
    unique_key='product_id',
    partition_by=spark_partition_by('category'),
    on_schema_change='fail'
) }}

{#- the events table is referenced directly each time: a CTE over it would be copied -#}
{% set all_events = ref('int_events_sessionized') %}

{% if is_incremental() %}
with touched_products as (
    select distinct touched.product_id
    from {{ all_events }} as touched
    where
        touched.product_id is not null
        and touched.built_at > {{ incremental_watermark('built_at') }}
),

events as (
    select * from {{ all_events }}
    where product_id in (select touched_products.product_id from touched_products)
),
{% else %}
with events as (
    select * from {{ all_events }}
    where product_id is not null
),
{% endif %}

seen as (
    select
        product_id,
        {{ shoplens_arg_max('category_code', 'event_time', 'event_id') }} as category_code,
        {{ shoplens_arg_max('category', 'event_time', 'event_id') }} as category,
        {{ shoplens_arg_max('brand', 'event_time', 'event_id') }} as brand,
        max(price) as max_seen_price,
        median(price) as median_seen_price,
        count(case when event_type = 'product_view' then 1 end) as product_views,
        count(case when event_type = 'add_to_cart' then 1 end) as cart_additions,
        count(case when event_type = 'purchase' then 1 end) as purchases,
        coalesce(
            {{ sum_int("case when event_type = 'purchase' then quantity end") }}, 0
        ) as units_sold,
        coalesce(sum(purchase_revenue), 0) as revenue,
        {{ this_run_started_at() }} as built_at
    from events
    group by product_id
)

{{ keyed_incremental_rows('seen', 'product_id', 'category') }}
