{#-
    The quality gate: the loads of raw events whose share of rows quarantined for a row defect
    (int_event_defects_counted: missing id, time or user, unknown type, future time, bad
    quantity; duplicates are not defects, so loading a file again passes) is above `max_share`.
    A load is one loader's rows with one loaded_at (one `generate` or `load-events` run, one
    sink flush). Loads of fewer than var('quarantine_gate_min_rows') rows (small sink flushes)
    are judged together per loader and day. One row per failing load, with its figures.
-#}
{% macro loads_over_quarantine_share(max_share) %}
with loads as (
    select
        load_source,
        loaded_at,
        {{ sum_int('row_count') }} as raw_rows,
        {{ sum_int('case when defect_reason is not null then row_count else 0 end') }}
            as quarantined_rows
    from {{ ref('int_event_defects_counted') }}
    group by load_source, loaded_at
),

judged as (
    select
        load_source,
        case
            when raw_rows >= {{ var('quarantine_gate_min_rows') }}
                then {{ dbt.concat(["'load of '", "cast(loaded_at as " ~ dbt.type_string() ~ ")"]) }}
            else {{ dbt.concat(["'small loads of '",
                "cast(cast(loaded_at as date) as " ~ dbt.type_string() ~ ")"]) }}
        end as load_window,
        raw_rows,
        quarantined_rows
    from loads
)

select
    load_source,
    load_window,
    {{ sum_int('raw_rows') }} as raw_rows,
    {{ sum_int('quarantined_rows') }} as quarantined_rows,
    cast({{ sum_int('quarantined_rows') }} as double) / {{ sum_int('raw_rows') }} as quarantined_share,
    {{ max_share }} as max_share
from judged
group by load_source, load_window
having cast({{ sum_int('quarantined_rows') }} as double) / {{ sum_int('raw_rows') }} > {{ max_share }}
{% endmacro %}
