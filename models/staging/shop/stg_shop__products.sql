-- One row per catalogue product: latest load wins; category named from the seed.
with source as (
    select * from {{ source('shop', 'products') }}
),

ranked as (
    select
        *,
        {{ dbt.split_part('lower(trim(category_code))', "'.'", 1) }} as category_top_level,
        row_number() over (
            partition by product_id order by loaded_at desc, price asc
        ) as copy_number
    from source
    where product_id is not null
),

categories as (
    select * from {{ ref('categories') }}
)

select
    ranked.product_id,
    nullif(trim(ranked.product_name), '') as product_name,
    ranked.category_id,
    nullif(lower(trim(ranked.category_code)), '') as category_code,
    coalesce(categories.category_name, 'Other') as category,
    nullif(trim(ranked.brand), '') as brand,
    case when ranked.price > 0 then ranked.price end as list_price,
    ranked.source as load_source,
    ranked.loaded_at
from ranked
left join categories
    on categories.category_top_level = ranked.category_top_level
where ranked.copy_number = 1
