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
select
    session_id,
    count(case when is_before = 1 then 1 end) as events_so_far,
    count(case when is_before = 1 and event_type = 'page_view' then 1 end) as page_views_so_far,
    count(case when is_before = 1 and event_type = 'product_view' then 1 end) as product_views_so_far,
    count(distinct case when is_before = 1 and event_type = 'product_view' then product_id end)
        as distinct_products_viewed_so_far,
    count(distinct case when is_before = 1 and event_type in ('product_view', 'add_to_cart')
        then category end) as distinct_categories_so_far,
    count(case when is_before = 1 and event_type = 'add_to_cart' then 1 end) as cart_adds_so_far,
    count(case when is_before = 1 and event_type = 'remove_from_cart' then 1 end) as cart_removes_so_far,
    cast(coalesce(sum(case when is_before = 1 and event_type = 'add_to_cart' then quantity end), 0)
        as {{ dbt.type_bigint() }}) as cart_units_so_far,
    coalesce(sum(case when is_before = 1 and event_type = 'add_to_cart' then price * quantity end), 0)
        as cart_value_so_far,
    coalesce({{ seconds_between(
        'min(case when is_before = 1 then event_time end)',
        'max(case when is_before = 1 then event_time end)') }}, 0) as duration_seconds_so_far,
    count(case when is_before = 1 and event_type in ('page_view', 'product_view') then 1 end)
        as pages_so_far,
    coalesce(
        {{ seconds_between(
            'min(case when is_before = 1 then event_time end)',
            'max(case when is_before = 1 then event_time end)') }} * 1.0
        / nullif(count(case when is_before = 1 and event_type in ('page_view', 'product_view') then 1 end), 0),
        0) as seconds_per_page_so_far,
    coalesce(avg(case when is_before = 1 and event_type = 'product_view' then price end), 0)
        as mean_price_viewed_so_far,
    coalesce(max(case when is_before = 1 and event_type = 'product_view' then price end), 0)
        as max_price_viewed_so_far,
    coalesce(min(case when is_before = 1 and device <> 'unknown' then device end), 'unknown') as device,
    coalesce(min(case when is_before = 1 and traffic_source <> 'unknown' then traffic_source end),
        'unknown') as traffic_source,
    {{ hour_of_day('coalesce(min(case when is_before = 1 then event_time end), min(event_time))') }}
        as start_hour,
    {{ day_of_week_iso('coalesce(min(case when is_before = 1 then event_time end), min(event_time))') }}
        as start_weekday,
    {{ month_of_year('coalesce(min(case when is_before = 1 then event_time end), min(event_time))') }}
        as start_month
from (
    select
        session_id,
        event_time,
        event_type,
        product_id,
        category,
        price,
        quantity,
        device,
        traffic_source,
        case
            when intent_time is null or event_time < intent_time then 1 else 0
        end as is_before
    from (
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
            eif_intent.intent_time
        from {{ events_relation }} as eif_all
        left join (
            -- first checkout or purchase per session: a small aggregate, joined back
            select session_id, min(event_time) as intent_time
            from {{ events_relation }}
            where event_type in ('checkout', 'purchase')
            group by session_id
        ) as eif_intent
            on eif_intent.session_id = eif_all.session_id
    ) as eif_marked
) as eif_events
group by session_id
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
