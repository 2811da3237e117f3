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
