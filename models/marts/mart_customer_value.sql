-- Customer value distribution: buyers in deciles of lifetime value (1 = lowest spend, 10 =
-- highest), and customers who never bought as decile 0.
with customers as (
    select customer_id, lifetime_value, frequency, recency_days, sessions
    from {{ ref('dim_customers') }}
    where sessions > 0
),

ranked as (
    select
        *,
        cast(case
            when lifetime_value > 0
                then ntile(10) over (
                    partition by case when lifetime_value > 0 then 1 else 0 end
                    order by lifetime_value, customer_id
                )
            else 0
        end as {{ dbt.type_bigint() }}) as value_decile
    from customers
)

select
    value_decile,
    count(*) as customers,
    min(lifetime_value) as min_lifetime_value,
    avg(lifetime_value) as avg_lifetime_value,
    max(lifetime_value) as max_lifetime_value,
    sum(lifetime_value) as total_lifetime_value,
    coalesce(sum(lifetime_value) / nullif(sum(sum(lifetime_value)) over (), 0), 0)
        as share_of_value,
    avg(frequency) as avg_frequency,
    avg(sessions) as avg_sessions,
    avg(recency_days) as avg_recency_days
from ranked
group by value_decile
