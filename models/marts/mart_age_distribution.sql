-- Registered customers by age band: how many, their gender mix, and what they buy. Empty when
-- the warehouse has no customer registry (REES46 imports).
with customers as (
    select * from {{ ref('dim_customers') }}
    where is_registered
),

age_bands as (
    select age_band, band_order from {{ ref('age_bands') }}
),

lines as (
    select
        age_band,
        count(*) as order_lines,
        sum(revenue) as revenue
    from {{ ref('fct_order_lines') }}
    group by age_band
),

by_band as (
    select
        age_band,
        count(*) as customers,
        count(case when frequency > 0 then 1 end) as buyers,
        count(case when gender = 'F' then 1 end) as female_customers,
        count(case when gender = 'M' then 1 end) as male_customers,
        count(case when gender not in ('F', 'M') then 1 end) as other_or_unknown_gender_customers,
        avg(age) as avg_age
    from customers
    group by age_band
)

select
    by_band.age_band,
    coalesce(age_bands.band_order, 99) as band_order,
    by_band.customers,
    cast(by_band.customers as double) / sum(by_band.customers) over () as share_of_customers,
    by_band.buyers,
    by_band.female_customers,
    by_band.male_customers,
    by_band.other_or_unknown_gender_customers,
    by_band.avg_age,
    coalesce(lines.order_lines, 0) as order_lines,
    coalesce(lines.revenue, 0) as revenue,
    coalesce(lines.revenue, 0) / by_band.customers as revenue_per_customer
from by_band
left join age_bands
    on age_bands.age_band = by_band.age_band
left join lines
    on lines.age_band = by_band.age_band
