{#- Small dispatched helpers for SQL that differs between DuckDB and other engines (Spark). -#}

{#- ISO day of week: 1 = Monday ... 7 = Sunday. -#}
{% macro day_of_week_iso(ts) %}{{ return(adapter.dispatch('day_of_week_iso', 'shoplens')(ts)) }}{% endmacro %}
{% macro default__day_of_week_iso(ts) %}(((dayofweek({{ ts }}) + 5) % 7) + 1){% endmacro %}
{% macro duckdb__day_of_week_iso(ts) %}isodow({{ ts }}){% endmacro %}

{#- Hour of day 0-23 and month 1-12 as integers. -#}
{% macro hour_of_day(ts) %}cast(extract(hour from {{ ts }}) as integer){% endmacro %}
{% macro month_of_year(ts) %}cast(extract(month from {{ ts }}) as integer){% endmacro %}

{#- Whole seconds from `start` to `end` (dbt's cross-database datediff). -#}
{% macro seconds_between(start, end) %}{{ dbt.datediff(start, end, 'second') }}{% endmacro %}

{#- The earliest timestamp there can be: the watermark of an empty incremental table. -#}
{% macro epoch_start() %}cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }}){% endmacro %}

{#- Value of `arg` on the row with the largest `val` (ties: any). -#}
{% macro shoplens_arg_max(arg, val) %}{{ return(adapter.dispatch('shoplens_arg_max', 'shoplens')(arg, val)) }}{% endmacro %}
{% macro default__shoplens_arg_max(arg, val) %}max_by({{ arg }}, {{ val }}){% endmacro %}
{% macro duckdb__shoplens_arg_max(arg, val) %}arg_max({{ arg }}, {{ val }}){% endmacro %}

{#- Sum of an integer expression as BIGINT (DuckDB widens integer sums to HUGEINT). -#}
{% macro sum_int(expression) %}cast(sum({{ expression }}) as {{ dbt.type_bigint() }}){% endmacro %}

{#- A 64-bit hash of a value (for grouping and set membership; equal values, equal hashes). -#}
{% macro shoplens_hash64(expression) %}{{ return(adapter.dispatch('shoplens_hash64', 'shoplens')(expression)) }}{% endmacro %}
{% macro default__shoplens_hash64(expression) %}xxhash64({{ expression }}){% endmacro %}
{% macro duckdb__shoplens_hash64(expression) %}hash({{ expression }}){% endmacro %}

{#- Every calendar day from start_date to end_date, inclusive, one row each (a set-returning
    select expression). -#}
{% macro dates_spanned(start_date, end_date) %}{{ return(adapter.dispatch('dates_spanned', 'shoplens')(start_date, end_date)) }}{% endmacro %}
{% macro default__dates_spanned(start_date, end_date) %}explode(sequence({{ start_date }}, {{ end_date }})){% endmacro %}
{% macro duckdb__dates_spanned(start_date, end_date) %}cast(unnest(generate_series({{ start_date }}, {{ end_date }}, interval 1 day)) as date){% endmacro %}
