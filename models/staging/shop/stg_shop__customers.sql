-- One row per customer: latest load wins; implausible ages and unknown genders become null.
with source as (
    select * from {{ source('shop', 'customers') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by customer_id order by loaded_at desc, signup_date asc
        ) as copy_number
    from source
    where customer_id is not null
)

select
    customer_id,
    case when age between 0 and 120 then age end as age,
    case when upper(trim(gender)) in ('F', 'M', 'X') then upper(trim(gender)) end as gender,
    nullif(trim(city), '') as city,
    nullif(trim(country), '') as country,
    signup_date,
    source as load_source,
    loaded_at
from ranked
where copy_number = 1
