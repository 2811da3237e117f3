-- Reliability bins of the live scores with known outcome: per session day and score bin, the
-- mean predicted probability against the observed purchase rate.
{%- set bins = var('monitoring_reliability_bins') | int %}

with binned as (
    select
        session_date,
        probability,
        outcome,
        least(floor(probability * {{ bins }}), {{ bins - 1 }}) as raw_bin
    from {{ ref('mon_live_outcomes') }}
)

select
    session_date,
    cast(raw_bin as {{ dbt.type_int() }}) as score_bin,
    raw_bin / {{ bins }} as bin_lower,
    (raw_bin + 1) / {{ bins }} as bin_upper,
    count(*) as sessions,
    avg(probability) as mean_probability,
    avg(cast(outcome as double)) as purchase_rate
from binned
group by session_date, raw_bin
