{#- Small dispatched helpers for SQL that differs between DuckDB and other engines (Spark). -#}

{#- ISO day of week: 1 = Monday ... 7 = Sunday. -#}
{% macro day_of_week_iso(ts) -%}
    {{ return(adapter.dispatch('day_of_week_iso', 'shoplens')(ts)) }}
{%- endmacro %}
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
{% macro shoplens_arg_max(arg, val) -%}
    {{ return(adapter.dispatch('shoplens_arg_max', 'shoplens')(arg, val)) }}
{%- endmacro %}
{% macro default__shoplens_arg_max(arg, val) %}max_by({{ arg }}, {{ val }}){% endmacro %}
{% macro duckdb__shoplens_arg_max(arg, val) %}arg_max({{ arg }}, {{ val }}){% endmacro %}

{#- Sum of an integer expression as BIGINT (DuckDB widens integer sums to HUGEINT). -#}
{% macro sum_int(expression) %}cast(sum({{ expression }}) as {{ dbt.type_bigint() }}){% endmacro %}

{#- A 64-bit hash of a value (for grouping and set membership; equal values, equal hashes). -#}
{% macro shoplens_hash64(expression) -%}
    {{ return(adapter.dispatch('shoplens_hash64', 'shoplens')(expression)) }}
{%- endmacro %}
{% macro default__shoplens_hash64(expression) %}xxhash64({{ expression }}){% endmacro %}
{% macro duckdb__shoplens_hash64(expression) %}hash({{ expression }}){% endmacro %}

{#- Every calendar day from start_date to end_date, inclusive, one row each (a set-returning
    select expression). -#}
{% macro dates_spanned(start_date, end_date) -%}
    {{ return(adapter.dispatch('dates_spanned', 'shoplens')(start_date, end_date)) }}
{%- endmacro %}
{% macro default__dates_spanned(start_date, end_date) %}explode(sequence({{ start_date }}, {{ end_date }})){% endmacro %}
{% macro duckdb__dates_spanned(start_date, end_date) %}cast(unnest(generate_series({{ start_date }}, {{ end_date }}, interval 1 day)) as date){% endmacro %}

{#- `text` without surrounding whitespace: spaces, tabs, line breaks, vertical tabs, form feeds
    (plain trim() removes only spaces). -#}
{% macro trim_whitespace(text) -%}
    {{ return(adapter.dispatch('trim_whitespace', 'shoplens')(text)) }}
{%- endmacro %}
{% macro default__trim_whitespace(text) -%}
    trim(both concat(' ', chr(9), chr(10), chr(11), chr(12), chr(13)) from {{ text }})
{%- endmacro %}
{% macro duckdb__trim_whitespace(text) -%}
    trim({{ text }}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13))
{%- endmacro %}

{#- True when a double is a finite number (not NaN, +inf or -inf); null when it is null. -#}
{% macro is_finite(number) -%}
    {{ return(adapter.dispatch('is_finite', 'shoplens')(number)) }}
{%- endmacro %}
{% macro default__is_finite(number) -%}
    (not isnan({{ number }}) and abs({{ number }}) < cast('Infinity' as double))
{%- endmacro %}
{% macro duckdb__is_finite(number) %}isfinite({{ number }}){% endmacro %}
