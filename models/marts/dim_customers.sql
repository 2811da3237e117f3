-- One row per customer: every registered customer and every customer seen in events (REES46
-- imports have no registry), with demographics where known and behaviour features.
with registered as (
    select * from {{ ref('stg_shop__customers') }}
),

featurized as (
    select * from {{ ref('int_customers_featurized') }}
),

age_bands as (
    select * from {{ ref('age_bands') }}
),

regions as (
    select * from {{ ref('regions') }}
),

all_customers as (
    select customer_id from registered
    union
    select customer_id from featurized
)

select
    all_customers.customer_id,
    registered.customer_id is not null as is_registered,
    registered.age,
    coalesce(age_bands.age_band, 'unknown') as age_band,
    coalesce(registered.gender, 'unknown') as gender,
    registered.city,
    registered.country,
    coalesce(regions.region, 'unknown') as region,
    registered.signup_date,
    coalesce(featurized.sessions, 0) as sessions,
    coalesce(featurized.purchase_sessions, 0) as purchase_sessions,
    featurized.first_session_start,
    featurized.last_session_start,
    featurized.recency_days,
    featurized.purchase_recency_days,
    coalesce(featurized.frequency, 0) as frequency,
    coalesce(featurized.monetary, 0) as monetary,
    coalesce(featurized.lifetime_value, 0) as lifetime_value,
    featurized.tenure_days,
    coalesce(featurized.units_purchased, 0) as units_purchased,
    coalesce(featurized.product_views, 0) as product_views,
    coalesce(featurized.cart_additions, 0) as cart_additions,
    featurized.avg_session_seconds,
    featurized.avg_pages_per_session,
    featurized.avg_product_views_per_session,
    featurized.avg_seconds_per_page,
    featurized.cart_additions_per_session,
    featurized.cart_abandonment_rate,
    featurized.purchase_rate
from all_customers
left join registered
    on registered.customer_id = all_customers.customer_id
left join featurized
    on featurized.customer_id = all_customers.customer_id
left join age_bands
    on registered.age between age_bands.min_age and age_bands.max_age
left join regions
    on regions.country = registered.country
