{#-
    Session-category features: what the category recommender reads for a session in progress.
    Like early_intent_features, only the session's events strictly before its first checkout or
    purchase count (all events when there is none), and a session with no such event has no
    rows. This is the single definition of these features: dbt renders it for
    int_sessions_category_featurized (batch recommendations and their evaluation),
    ml.feature_definitions stores the rendered SQL (feature_set 'session_category'), and the live
    recommender (shoplens.stream.recommender) runs that SQL over its in-memory events.

    events_relation: relation with session_id, customer_id, event_time, event_type, category
        (the int_events_sessionized vocabulary).
    customers_relation: relation with customer_id, age, gender, country (stg_shop__customers).
    stop_event_types: the history stops at the session's first event of these types; the
        default (checkout, purchase) is what the live recommender sees. The offline evaluation
        also cuts at the first cart add, to measure recommendations while a shopper browses.

    Output: one row per session and history category (category null, views and carts 0 for a
    session with no categorised product view or cart add yet), with the session's context:
    customer_id (the smallest one seen), last_event_time, events_so_far, and the category_choice
    model's inputs named as in fct_order_lines (age, gender, country, transaction_hour,
    transaction_weekday, transaction_month), the time parts taken from the latest event so far.
-#}
{% macro session_category_features(
    events_relation, customers_relation, stop_event_types=['checkout', 'purchase']
) %}
with scf_intent as (
    select session_id, min(event_time) as intent_time
    from {{ events_relation }}
    where event_type in ('{{ stop_event_types | join("', '") }}')
    group by session_id
),

scf_events as (
    select
        scf_all.session_id,
        scf_all.customer_id,
        scf_all.event_time,
        scf_all.event_type,
        scf_all.category
    from {{ events_relation }} as scf_all
    left join scf_intent
        on scf_intent.session_id = scf_all.session_id
    where scf_intent.intent_time is null or scf_all.event_time < scf_intent.intent_time
),

scf_context as (
    select
        session_id,
        min(customer_id) as customer_id,
        max(event_time) as last_event_time,
        count(*) as events_so_far
    from scf_events
    group by session_id
),

scf_history as (
    select
        session_id,
        category,
        count(case when event_type = 'product_view' then 1 end) as views_so_far,
        count(case when event_type = 'add_to_cart' then 1 end) as carts_so_far
    from scf_events
    where event_type in ('product_view', 'add_to_cart') and category is not null
    group by session_id, category
)

select
    scf_context.session_id,
    scf_context.customer_id,
    scf_context.last_event_time,
    scf_context.events_so_far,
    scf_customers.age,
    coalesce(scf_customers.gender, 'unknown') as gender,
    scf_customers.country,
    {{ hour_of_day('scf_context.last_event_time') }} as transaction_hour,
    {{ day_of_week_iso('scf_context.last_event_time') }} as transaction_weekday,
    {{ month_of_year('scf_context.last_event_time') }} as transaction_month,
    scf_history.category,
    coalesce(scf_history.views_so_far, 0) as views_so_far,
    coalesce(scf_history.carts_so_far, 0) as carts_so_far
from scf_context
left join {{ customers_relation }} as scf_customers
    on scf_customers.customer_id = scf_context.customer_id
left join scf_history
    on scf_history.session_id = scf_context.session_id
{% endmacro %}
