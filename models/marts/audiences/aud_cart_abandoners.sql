-- Cart abandoners of the last var('audience_cart_abandoner_days') days before the data's as-of
-- time: one row per customer with the products left in a cart in that window and not bought
-- since. See _audiences__models.yml for the rules.
{%- set window_days = var('audience_cart_abandoner_days') | int %}
{%- set prediction_columns = [
    ['session_id', dbt.type_string()],
    ['model_name', dbt.type_string()],
    ['probability', 'double'],
    ['threshold', 'double'],
] %}

with sessions as (
    select session_id, session_start, session_end from {{ ref('fct_sessions') }}
),

products as (
    select product_id, list_price from {{ ref('dim_products') }}
),

as_of as (
    select
        max(session_end) as as_of_time,
        {{ timestamp_add('day', -window_days, 'max(session_end)') }} as window_start
    from sessions
),

-- Cart and purchase events from the window's start on, not all of history: a (session, product)
-- whose last cart event is older is not an abandoned cart of the window, and only a purchase at
-- or after a cart in the window can clear it, so the rows below are the same.
events as (
    select
        session_id,
        customer_id,
        product_id,
        event_id,
        event_type,
        event_time,
        price,
        quantity
    from {{ ref('fct_events') }}
    where product_id is not null
        and event_type in ('add_to_cart', 'remove_from_cart', 'purchase')
        and event_time >= (select as_of.window_start from as_of)
),

-- Each (session, product) with a cart event: the last cart event decides whether the product
-- was left in the cart; the last addition gives its price and units. Events of the same time
-- are ordered by event_id, so an addition and a removal in the same second always give the
-- same answer.
session_products as (
    select
        session_id,
        customer_id,
        product_id,
        {{ shoplens_arg_max('event_type', 'event_time', 'event_id') }} as last_cart_event,
        max(event_time) as last_cart_time,
        {{ shoplens_arg_max('price', 'event_time', 'event_id') }} as added_price,
        {{ shoplens_arg_max('quantity', 'event_time', 'event_id') }} as added_units
    from events
    where event_type in ('add_to_cart', 'remove_from_cart')
    group by session_id, customer_id, product_id
),

purchases as (
    select customer_id, product_id, max(event_time) as last_purchase_time
    from events
    where event_type = 'purchase'
    group by customer_id, product_id
),

-- Left in a cart within the window and not bought at or after that time (in the same session
-- or any later one). The latest such cart counts for each customer and product.
left_in_cart as (
    select
        session_products.session_id,
        session_products.customer_id,
        session_products.product_id,
        session_products.last_cart_time,
        coalesce(session_products.added_units, 1) as units,
        coalesce(session_products.added_price, products.list_price) as unit_price,
        row_number() over (
            partition by session_products.customer_id, session_products.product_id
            order by session_products.last_cart_time desc, session_products.session_id desc
        ) as recency
    from session_products
    cross join as_of
    left join products
        on products.product_id = session_products.product_id
    left join purchases
        on purchases.customer_id = session_products.customer_id
        and purchases.product_id = session_products.product_id
        and purchases.last_purchase_time >= session_products.last_cart_time
    where session_products.last_cart_event = 'add_to_cart'
        and session_products.last_cart_time >= as_of.window_start
        and purchases.product_id is null
),

abandoned as (
    select
        session_id,
        customer_id,
        product_id,
        last_cart_time,
        units,
        unit_price,
        units * unit_price as product_value
    from left_in_cart
    where recency = 1
),

per_customer as (
    select
        customer_id,
        count(*) as abandoned_products,
        {{ sum_int('units') }} as abandoned_units,
        coalesce(sum(product_value), 0) as abandoned_value,
        {{ listagg_ordered(
            'cast(product_id as ' ~ dbt.type_string() ~ ')',
            "';'",
            [['product_value', 'desc'], ['product_id', 'asc']],
        ) }} as abandoned_product_ids,
        min(last_cart_time) as first_abandoned_at,
        max(last_cart_time) as last_abandoned_at,
        {{ shoplens_arg_max('session_id', 'last_cart_time', 'session_id') }} as last_session_id
    from abandoned
    group by customer_id
),

batch_scores as (
    select session_id, probability, threshold
    from {{ relation_or_empty(ref('session_predictions'), prediction_columns) }}
    where model_name = 'purchase_intent'
),

live_scores as (
    select
        session_id,
        probability,
        threshold,
        row_number() over (
            partition by session_id order by scored_at desc, events_so_far desc
        ) as recency
    from {{ ref('stg_live__session_scores') }}
)

select
    per_customer.customer_id,
    per_customer.abandoned_products,
    per_customer.abandoned_units,
    per_customer.abandoned_value,
    per_customer.abandoned_product_ids,
    per_customer.first_abandoned_at,
    per_customer.last_abandoned_at,
    per_customer.last_session_id,
    sessions.session_start as last_session_start,
    coalesce(live_scores.probability, batch_scores.probability) as intent_probability,
    coalesce(live_scores.threshold, batch_scores.threshold) as intent_threshold,
    case
        when live_scores.probability is not null then 'live'
        when batch_scores.probability is not null then 'batch'
    end as intent_score_source,
    coalesce(live_scores.probability, batch_scores.probability)
    >= coalesce(live_scores.threshold, batch_scores.threshold) as high_intent,
    as_of.window_start,
    as_of.as_of_time
from per_customer
cross join as_of
left join sessions
    on sessions.session_id = per_customer.last_session_id
left join live_scores
    on live_scores.session_id = per_customer.last_session_id
    and live_scores.recency = 1
left join batch_scores
    on batch_scores.session_id = per_customer.last_session_id
