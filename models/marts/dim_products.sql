-- One row per product: the catalogue plus every product seen in events (REES46 imports have no
-- catalogue; their attributes come from the latest event), with its list-price band and activity.
with catalogue as (
    select * from {{ ref('stg_shop__products') }}
),

-- per product seen in events (dim_products_seen, kept up to date incrementally)
seen as (
    select * from {{ ref('dim_products_seen') }}
),

price_bands as (
    select * from {{ ref('price_bands') }}
),

combined as (
    select
        coalesce(catalogue.product_id, seen.product_id) as product_id,
        catalogue.product_id is not null as in_catalogue,
        catalogue.product_name,
        coalesce(catalogue.category_code, seen.category_code) as category_code,
        coalesce(catalogue.category, seen.category, 'Other') as category,
        coalesce(catalogue.brand, seen.brand) as brand,
        coalesce(catalogue.list_price, seen.median_seen_price) as list_price,
        coalesce(seen.product_views, 0) as product_views,
        coalesce(seen.cart_additions, 0) as cart_additions,
        coalesce(seen.purchases, 0) as purchases,
        cast(coalesce(seen.units_sold, 0) as {{ dbt.type_bigint() }}) as units_sold,
        coalesce(seen.revenue, 0) as revenue
    from catalogue
    full outer join seen
        on seen.product_id = catalogue.product_id
)

select
    combined.*,
    coalesce(price_bands.price_band, 'Unbanded') as price_band,
    coalesce(cast(combined.cart_additions as double) / nullif(combined.product_views, 0), 0)
        as view_to_cart_rate
from combined
left join price_bands
    on price_bands.category_name = combined.category
    and price_bands.min_price <= combined.list_price
    and price_bands.max_price > combined.list_price
