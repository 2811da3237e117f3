{#-
    Raw event rows counted per load (loaded_at, load_source) and row-level defect (null = no
    defect). Also the input of the quality gate on each load's quarantined share. The
    checks look at one row at a time, so each load's counts never change: incremental builds
    append the loads since the newest one here instead of re-checking every raw row.
    mart_data_quality sums them.
-#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail'
) }}

with checked as (
    {% if is_incremental() %}
    {{ shop_events_checked(source('shop', 'events'),
        "loaded_at > (select coalesce(max(loaded_at), " ~ epoch_start() ~ ") from " ~ this ~ ")") }}
    {% else %}
    {{ shop_events_checked(source('shop', 'events')) }}
    {% endif %}
)

select
    loaded_at,
    load_source,
    defect_reason,
    count(*) as row_count
from checked
group by loaded_at, load_source, defect_reason
