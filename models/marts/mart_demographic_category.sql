-- Purchases by age band, gender and category (what each demographic group buys). Empty when the
-- warehouse has no transactions.
with grouped as (
    select
        age_band,
        gender,
        category,
        count(*) as order_lines,
        cast(sum(quantity) as {{ dbt.type_bigint() }}) as units,
        sum(revenue) as revenue,
        count(distinct customer_id) as customers
    from {{ ref('fct_order_lines') }}
    group by age_band, gender, category
)

select
    age_band,
    gender,
    category,
    order_lines,
    units,
    revenue,
    customers,
    cast(order_lines as double) / sum(order_lines) over (partition by age_band, gender)
        as share_of_group_lines
from grouped
