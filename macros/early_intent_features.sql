{#-
    Early-intent features: ONE row per session_id, computed only from the session's events
    strictly before its first checkout or purchase (all events when there is none). Nothing
    here depends on what happens at or after that point, so the features cannot reveal the
    outcome. This is the single definition of the live-scoring features: dbt renders it for
    int_sessions_early_featurized, ml.feature_definitions stores the rendered SQL, and the live
    scorer runs that SQL over an in-memory table of in-progress events.

    events_relation: a relation or CTE name with (at least) the columns
        session_id, event_time, event_type, product_id, category, price, quantity, device,
        traffic_source
    (the int_events_sessionized vocabulary: event_type in page_view, product_view, add_to_cart,
    remove_from_cart, checkout, purchase). No refs or sources inside: plain SQL over that input.

    Output columns: session_id, then early_intent_feature_columns() in that order. Every
    feature is non-null. A session whose first event is a checkout or purchase has
    events_so_far = 0 and neutral values (device/traffic_source 'unknown', start_* from its
    first event): filter it out of training.
-#}
{% macro early_intent_features(events_relation) %}
with eif_intent as (
    {#- first checkout or purchase per session (a small aggregate, joined back) #}
    select session_id, min(event_time) as intent_time
    from {{ events_relation }}
    where event_type in ('checkout', 'purchase')
    group by session_id
),

eif_events as (
    select
        eif_all.session_id,
        eif_all.event_time,
        eif_all.event_type,
        eif_all.product_id,
        eif_all.category,
        eif_all.price,
        eif_all.quantity,
        eif_all.device,
        eif_all.traffic_source,
        case
            when eif_intent.intent_time is null or eif_all.event_time < eif_intent.intent_time
                then 1 else 0
        end as is_before
    from {{ events_relation }} as eif_all
    left join eif_intent
        on eif_intent.session_id = eif_all.session_id
),

{#- distinct counts as two-step group-bys (cheaper than count(distinct) over millions of rows);
    Jinja comments, not SQL ones: the rendered SQL is stored and run elsewhere. #}
eif_products as (
    select session_id, count(*) as distinct_products
    from (
        select session_id, product_id
        from eif_events
        where is_before = 1 and event_type = 'product_view' and product_id is not null
        group by session_id, product_id
    ) as eif_session_products
    group by session_id
),

eif_categories as (
    select session_id, count(*) as distinct_categories
    from (
        select session_id, category
        from eif_events
        where is_before = 1 and event_type in ('product_view', 'add_to_cart')
            and category is not null
        group by session_id, category
    ) as eif_session_categories
    group by session_id
),

eif_totals as (
    select
        session_id,
        count(case when is_before = 1 then 1 end) as events_so_far,
        count(case when is_before = 1 and event_type = 'page_view' then 1 end) as page_views_so_far,
        count(case when is_before = 1 and event_type = 'product_view' then 1 end)
            as product_views_so_far,
        count(case when is_before = 1 and event_type = 'add_to_cart' then 1 end) as cart_adds_so_far,
        count(case when is_before = 1 and event_type = 'remove_from_cart' then 1 end)
            as cart_removes_so_far,
        cast(coalesce(sum(case when is_before = 1 and event_type = 'add_to_cart' then quantity end), 0)
            as {{ dbt.type_bigint() }}) as cart_units_so_far,
        coalesce(sum(case when is_before = 1 and event_type = 'add_to_cart' then price * quantity end),
            0) as cart_value_so_far,
        coalesce({{ seconds_between(
            'min(case when is_before = 1 then event_time end)',
            'max(case when is_before = 1 then event_time end)') }}, 0) as duration_seconds_so_far,
        count(case when is_before = 1 and event_type in ('page_view', 'product_view') then 1 end)
            as pages_so_far,
        coalesce(avg(case when is_before = 1 and event_type = 'product_view' then price end), 0)
            as mean_price_viewed_so_far,
        coalesce(max(case when is_before = 1 and event_type = 'product_view' then price end), 0)
            as max_price_viewed_so_far,
        coalesce(min(case when is_before = 1 and device <> 'unknown' then device end), 'unknown')
            as device,
        coalesce(min(case when is_before = 1 and traffic_source <> 'unknown' then traffic_source end),
            'unknown') as traffic_source,
        coalesce(min(case when is_before = 1 then event_time end), min(event_time)) as first_time
    from eif_events
    group by session_id
)

select
    eif_totals.session_id,
    eif_totals.events_so_far,
    eif_totals.page_views_so_far,
    eif_totals.product_views_so_far,
    coalesce(eif_products.distinct_products, 0) as distinct_products_viewed_so_far,
    coalesce(eif_categories.distinct_categories, 0) as distinct_categories_so_far,
    eif_totals.cart_adds_so_far,
    eif_totals.cart_removes_so_far,
    eif_totals.cart_units_so_far,
    eif_totals.cart_value_so_far,
    eif_totals.duration_seconds_so_far,
    eif_totals.pages_so_far,
    coalesce(cast(eif_totals.duration_seconds_so_far as double) / nullif(eif_totals.pages_so_far, 0), 0)
        as seconds_per_page_so_far,
    eif_totals.mean_price_viewed_so_far,
    eif_totals.max_price_viewed_so_far,
    eif_totals.device,
    eif_totals.traffic_source,
    {{ hour_of_day('eif_totals.first_time') }} as start_hour,
    {{ day_of_week_iso('eif_totals.first_time') }} as start_weekday,
    {{ month_of_year('eif_totals.first_time') }} as start_month
from eif_totals
left join eif_products
    on eif_products.session_id = eif_totals.session_id
left join eif_categories
    on eif_categories.session_id = eif_totals.session_id
{% endmacro %}


{#- The feature columns early_intent_features() returns besides session_id, in order. -#}
{% macro early_intent_feature_columns() %}
    {{ return([
        'events_so_far', 'page_views_so_far', 'product_views_so_far',
        'distinct_products_viewed_so_far', 'distinct_categories_so_far', 'cart_adds_so_far',
        'cart_removes_so_far', 'cart_units_so_far', 'cart_value_so_far',
        'duration_seconds_so_far', 'pages_so_far', 'seconds_per_page_so_far',
        'mean_price_viewed_so_far', 'max_price_viewed_so_far', 'device', 'traffic_source',
        'start_hour', 'start_weekday', 'start_month'
    ]) }}
{% endmacro %}
