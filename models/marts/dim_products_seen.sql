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

{#- The events table is referenced directly each time (a CTE over it would be copied), with the
    products this build recomputes: the touched ones, or every product. -#}
{% set all_events = ref('int_events_sessionized') %}

{% if is_incremental() %}
{% set recomputed -%}
events.product_id in (select touched_products.product_id from touched_products)
{%- endset %}
with touched_products as (
    select distinct touched.product_id
    from {{ all_events }} as touched
    where
        touched.product_id is not null
        and touched.built_at > {{ incremental_watermark('built_at') }}
),
{% else %}
{% set recomputed = 'events.product_id is not null' %}
with
{% endif %}

-- Per product: its latest category code, category and brand (each the value of the latest event
-- that has one, ties on time broken by the larger event_id) in two steps, because an arg_max
-- keyed on the pair (event_time, event_id) compares a struct per event, most of this model's
-- time: here the aggregate keeps each column's latest time, and only the events at those times
-- are read again to break ties.
aggregated as (
    select
        events.product_id,
        max(
            case when events.category_code is not null then events.event_time end
        ) as category_code_time,
        max(case when events.category is not null then events.event_time end) as category_time,
        max(case when events.brand is not null then events.event_time end) as brand_time,
        max(events.price) as max_seen_price,
        median(events.price) as median_seen_price,
        count(case when events.event_type = 'product_view' then 1 end) as product_views,
        count(case when events.event_type = 'add_to_cart' then 1 end) as cart_additions,
        count(case when events.event_type = 'purchase' then 1 end) as purchases,
        coalesce(
            {{ sum_int("case when events.event_type = 'purchase' then events.quantity end") }}, 0
        ) as units_sold,
        coalesce(sum(events.purchase_revenue), 0) as revenue
    from {{ all_events }} as events
    where {{ recomputed }}
    group by events.product_id
),

latest as (
    select
        events.product_id,
        {{ shoplens_arg_max(
            'case when events.event_time = aggregated.category_code_time'
            ~ ' then events.category_code end',
            'events.event_id'
        ) }} as category_code,
        {{ shoplens_arg_max(
            'case when events.event_time = aggregated.category_time then events.category end',
            'events.event_id'
        ) }} as category,
        {{ shoplens_arg_max(
            'case when events.event_time = aggregated.brand_time then events.brand end',
            'events.event_id'
        ) }} as brand
    from {{ all_events }} as events
    inner join aggregated
        on aggregated.product_id = events.product_id
        and (
            aggregated.category_code_time = events.event_time
            or aggregated.category_time = events.event_time
            or aggregated.brand_time = events.event_time
        )
    where {{ recomputed }}
    group by events.product_id
),

seen as (
    select
        aggregated.product_id,
        latest.category_code,
        latest.category,
        latest.brand,
        aggregated.max_seen_price,
        aggregated.median_seen_price,
        aggregated.product_views,
        aggregated.cart_additions,
        aggregated.purchases,
        aggregated.units_sold,
        aggregated.revenue,
        {{ this_run_started_at() }} as built_at
    from aggregated
    left join latest
        on latest.product_id = aggregated.product_id
)

{{ keyed_incremental_rows('seen', 'product_id', 'category') }}
