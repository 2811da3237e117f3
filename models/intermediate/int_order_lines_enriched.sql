-- One row per usable order line with time parts, the price band of its category (seed
-- price_bands) and the buyer's demographics and age band (seed age_bands). A line whose category
-- code is missing takes its product's category from the catalogue.
with lines as (
    select * from {{ ref('stg_shop__transactions') }}
),

products as (
    select product_id, category from {{ ref('stg_shop__products') }}
),

customers as (
    select * from {{ ref('stg_shop__customers') }}
),

price_bands as (
    select * from {{ ref('price_bands') }}
),

age_bands as (
    select * from {{ ref('age_bands') }}
),

regions as (
    select * from {{ ref('regions') }}
),

categorised as (
    select
        lines.*,
        case
            when lines.category_code is null and products.category is not null
                then products.category
            else lines.category
        end as line_category
    from lines
    left join products
        on products.product_id = lines.product_id
)

select
    categorised.transaction_id,
    categorised.order_id,
    categorised.event_id,
    categorised.customer_id,
    categorised.product_id,
    categorised.line_category as category,
    categorised.price,
    categorised.quantity,
    categorised.revenue,
    categorised.transaction_time,
    cast(categorised.transaction_time as date) as transaction_date,
    {{ hour_of_day('categorised.transaction_time') }} as transaction_hour,
    {{ day_of_week_iso('categorised.transaction_time') }} as transaction_weekday,
    {{ month_of_year('categorised.transaction_time') }} as transaction_month,
    cast({{ dbt.date_trunc('month', 'categorised.transaction_time') }} as date)
        as transaction_month_start,
    coalesce(price_bands.price_band, 'Unbanded') as price_band,
    customers.age,
    coalesce(age_bands.age_band, 'unknown') as age_band,
    coalesce(customers.gender, 'unknown') as gender,
    customers.city,
    customers.country,
    coalesce(regions.region, 'unknown') as region,
    categorised.loaded_at
from categorised
left join price_bands
    on price_bands.category_name = categorised.line_category
    and price_bands.min_price <= categorised.price
    and price_bands.max_price > categorised.price
left join customers
    on customers.customer_id = categorised.customer_id
left join age_bands
    on customers.age between age_bands.min_age and age_bands.max_age
left join regions
    on regions.country = customers.country
