-- Monthly sales from order lines (seasonality). Empty when the warehouse has no transactions
-- (REES46 imports).
with lines as (
    select * from {{ ref('fct_order_lines') }}
),

monthly as (
    select
        transaction_month_start as sales_month,
        min(transaction_month) as month_of_year,
        count(*) as order_lines,
        count(distinct order_id) as orders,
        cast(sum(quantity) as {{ dbt.type_bigint() }}) as units,
        sum(revenue) as revenue,
        count(distinct customer_id) as customers
    from lines
    group by transaction_month_start
)

select
    sales_month,
    month_of_year,
    order_lines,
    orders,
    units,
    revenue,
    customers,
    revenue / nullif(orders, 0) as average_order_value,
    revenue / avg(revenue) over () as seasonality_index
from monthly
