-- Monthly sales from order lines (seasonality). Empty when the warehouse has no transactions
-- (REES46 imports). A month the data covers only in part (the data starts after its first day
-- or ends before its last) is flagged is_partial_month and gets no seasonality index; the
-- index compares complete months only.
with lines as (
    select * from {{ ref('fct_order_lines') }}
),

bounds as (
    select
        cast(min(transaction_time) as date) as first_day,
        cast(max(transaction_time) as date) as last_day
    from lines
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
),

covered as (
    select
        monthly.*,
        cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'monthly.sales_month')) }} as date)
            as month_end,
        bounds.first_day,
        bounds.last_day
    from monthly
    cross join bounds
),

flagged as (
    select
        *,
        case when first_day > sales_month then first_day else sales_month end as covered_from,
        case when last_day < month_end then last_day else month_end end as covered_to,
        first_day > sales_month or last_day < month_end as is_partial_month
    from covered
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
    cast({{ dbt.datediff('covered_from', 'covered_to', 'day') }} + 1 as {{ dbt.type_int() }})
        as days_covered,
    cast({{ dbt.datediff('sales_month', 'month_end', 'day') }} + 1 as {{ dbt.type_int() }})
        as days_in_month,
    is_partial_month,
    case
        when not is_partial_month
            then revenue / avg(case when not is_partial_month then revenue end) over ()
    end as seasonality_index
from flagged
