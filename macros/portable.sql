{#- Small dispatched helpers for SQL that differs between DuckDB and other engines (Spark). -#}

{#- ISO day of week: 1 = Monday ... 7 = Sunday, a BIGINT (DuckDB's isodow). -#}
{% macro day_of_week_iso(ts) -%}
    {{ return(adapter.dispatch('day_of_week_iso', 'shoplens')(ts)) }}
{%- endmacro %}
{% macro default__day_of_week_iso(ts) -%}
    cast(((dayofweek({{ ts }}) + 5) % 7) + 1 as {{ dbt.type_bigint() }})
{%- endmacro %}
{% macro duckdb__day_of_week_iso(ts) %}isodow({{ ts }}){% endmacro %}

{#- Hour of day 0-23 and month 1-12 as integers. -#}
{% macro hour_of_day(ts) %}cast(extract(hour from {{ ts }}) as integer){% endmacro %}
{% macro month_of_year(ts) %}cast(extract(month from {{ ts }}) as integer){% endmacro %}

{#- Whole seconds (or days) from `start` to `end`: dbt's cross-database datediff, as BIGINT on
    every engine (Spark's is an INT). -#}
{% macro seconds_between(start, end) -%}
    cast({{ dbt.datediff(start, end, 'second') }} as {{ dbt.type_bigint() }})
{%- endmacro %}
{% macro days_between(start, end) -%}
    cast({{ dbt.datediff(start, end, 'day') }} as {{ dbt.type_bigint() }})
{%- endmacro %}

{#- The earliest timestamp there can be: the watermark of an empty incremental table. -#}
{% macro epoch_start() %}cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }}){% endmacro %}

{#- The newest `column` among this incremental model's rows, or epoch_start() while it has none:
    the watermark its incremental branch reads newer upstream rows from (a scalar subquery). -#}
{% macro incremental_watermark(column) -%}
    (select coalesce(max(built.{{ column }}), {{ epoch_start() }}) from {{ this }} as built)
{%- endmacro %}

{#- Value of `arg` on the row with the largest `val` (rows where `val` is null aside). Rows of
    equal `val` are ordered by `tie`, so the result does not depend on the order the rows are
    stored in (without `tie`: any of them). -#}
{% macro shoplens_arg_max(arg, val, tie=none) -%}
    {{ return(adapter.dispatch('shoplens_arg_max', 'shoplens')(arg, val, tie)) }}
{%- endmacro %}
{% macro default__shoplens_arg_max(arg, val, tie) -%}
    max_by({{ arg }}, {{ shoplens_order_key(val, tie, 'struct') }})
{%- endmacro %}
{% macro duckdb__shoplens_arg_max(arg, val, tie) -%}
    arg_max({{ arg }}, {{ shoplens_order_key(val, tie, 'row') }})
{%- endmacro %}
{#- `val`, or with `tie` the pair (`val`, `tie`) built by `constructor`, null where `val` is. -#}
{% macro shoplens_order_key(val, tie, constructor) -%}
    {%- if tie is none -%}{{ val }}
    {%- else -%}case when {{ val }} is not null then {{ constructor }}({{ val }}, {{ tie }}) end
    {%- endif -%}
{%- endmacro %}

{#- `expression` cast to `type`, null where it cannot be (DuckDB and Spark both spell it
    try_cast; dbt.safe_cast is a plain cast on Spark, an error under its ANSI mode). -#}
{% macro shoplens_try_cast(expression, type) %}try_cast({{ expression }} as {{ type }}){% endmacro %}

{#- Sum of an integer expression as BIGINT (DuckDB widens integer sums to HUGEINT). -#}
{% macro sum_int(expression) %}cast(sum({{ expression }}) as {{ dbt.type_bigint() }}){% endmacro %}

{#- The k-th decile edge (k = 1..9) of `expression` in a group: percentile_cont(k / 10). DuckDB
    takes all nine from one quantile_cont over the list of fractions (the repeated aggregate is
    computed once), so each group's values are ordered once, not once per edge; same values. -#}
{% macro decile_edge(expression, k) -%}
    {{ return(adapter.dispatch('decile_edge', 'shoplens')(expression, k)) }}
{%- endmacro %}
{% macro default__decile_edge(expression, k) -%}
    percentile_cont({{ k / 10 }}) within group (order by {{ expression }})
{%- endmacro %}
{% macro duckdb__decile_edge(expression, k) -%}
    quantile_cont({{ expression }}, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])[{{ k }}]
{%- endmacro %}

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

{#-
    Incremental models that replace their rows by a key (a build recomputes every row of the
    keys new data touched). DuckDB: dbt's delete+insert on unique_key. Spark has no DELETE on
    Parquet tables and merge needs Delta or Iceberg: there the model is partitioned by
    `partition_by` (a day or month column) and a build overwrites only the partitions it touches
    (insert_overwrite), writing into them, through keyed_incremental_rows(), the recomputed rows
    and the rows it leaves in place. Use in config():
        incremental_strategy=keyed_incremental_strategy(),
        partition_by=spark_partition_by('event_date'),
-#}
{% macro keyed_incremental_strategy() -%}
    {{ return(adapter.dispatch('keyed_incremental_strategy', 'shoplens')()) }}
{%- endmacro %}
{% macro default__keyed_incremental_strategy() %}{{ return('delete+insert') }}{% endmacro %}
{% macro spark__keyed_incremental_strategy() %}{{ return('insert_overwrite') }}{% endmacro %}

{#- The partition column of a table on Spark; none elsewhere. -#}
{% macro spark_partition_by(column) -%}
    {{ return(adapter.dispatch('spark_partition_by', 'shoplens')(column)) }}
{%- endmacro %}
{% macro default__spark_partition_by(column) %}{{ return(none) }}{% endmacro %}
{% macro spark__spark_partition_by(column) %}{{ return(column) }}{% endmacro %}

{#-
    What an incremental build of a keyed model writes, from `rows` (a CTE: the recomputed rows of
    the touched keys). DuckDB deletes the old rows of those keys: `rows` as they are. Spark
    overwrites whole partitions: `rows`, plus the rows already in every partition that `rows`
    or the replaced rows are in (the null partition too), except the replaced rows (those whose
    `unique_key` is in `rows`). A full build writes `rows` on every engine.
-#}
{% macro keyed_incremental_rows(rows, unique_key, partition_by) -%}
    {{ return(adapter.dispatch('keyed_incremental_rows', 'shoplens')(
        rows, unique_key, partition_by)) }}
{%- endmacro %}
{% macro default__keyed_incremental_rows(rows, unique_key, partition_by) %}
select * from {{ rows }}
{% endmacro %}
{% macro spark__keyed_incremental_rows(rows, unique_key, partition_by) %}
{%- if is_incremental() -%}
{#- `rows` and the table are each read once: Spark inlines a CTE at every reference, and the
    models' CTEs are deep (a plan with four copies of int_events_sessionized's kept Catalyst
    busy for minutes). Windows flag the replaced keys and the partitions they touch. -#}
{%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
select {{ columns | join(', ') }}
from (
    select
        *,
        max(keyed_replaced) over (partition by {{ partition_by }}) as keyed_partition_touched
    from (
        select
            *,
            max(keyed_is_new) over (partition by {{ unique_key }}) as keyed_replaced
        from (
            select {{ columns | join(', ') }}, 1 as keyed_is_new from {{ rows }}
            union all
            select {{ columns | join(', ') }}, 0 as keyed_is_new from {{ this }}
        ) as keyed_all
    ) as keyed_flagged
) as keyed_touched
where keyed_partition_touched = 1 and (keyed_is_new = 1 or keyed_replaced = 0)
{%- else -%}
select * from {{ rows }}
{%- endif -%}
{% endmacro %}

{#-
    listagg with an order: `order_by` is a list of [expression, 'asc' or 'desc'] pairs, nulls
    last. dbt.listagg ignores the order on Spark (collect_list has none): there the values are
    collected with their keys and sorted by a comparator.
-#}
{% macro listagg_ordered(measure, delimiter_text, order_by) -%}
    {{ return(adapter.dispatch('listagg_ordered', 'shoplens')(measure, delimiter_text, order_by)) }}
{%- endmacro %}
{% macro default__listagg_ordered(measure, delimiter_text, order_by) -%}
    {%- set keys = [] -%}
    {%- for expression, direction in order_by -%}
        {%- do keys.append(expression ~ ' ' ~ direction ~ ' nulls last') -%}
    {%- endfor -%}
    {{ dbt.listagg(measure, delimiter_text, 'order by ' ~ keys | join(', ')) }}
{%- endmacro %}
{% macro spark__listagg_ordered(measure, delimiter_text, order_by) -%}
    {%- set ns = namespace(compare='0') -%}
    {%- for expression, direction in order_by | reverse -%}
        {%- set key = 'k' ~ (order_by | length - loop.index) -%}
        {%- set before, after = ('-1', '1') if direction == 'asc' else ('1', '-1') -%}
        {%- set compare -%}
            case
                when l.{{ key }} is null and r.{{ key }} is null then {{ ns.compare }}
                when l.{{ key }} is null then 1
                when r.{{ key }} is null then -1
                when l.{{ key }} < r.{{ key }} then {{ before }}
                when l.{{ key }} > r.{{ key }} then {{ after }}
                else {{ ns.compare }}
            end
        {%- endset -%}
        {%- set ns.compare = compare -%}
    {%- endfor -%}
    array_join(transform(array_sort(collect_list(named_struct(
        {%- for expression, direction in order_by %}
        'k{{ loop.index0 }}', {{ expression }},
        {%- endfor %}
        'v', {{ measure }})),
        (l, r) -> {{ ns.compare }}
    ), x -> x.v), {{ delimiter_text }})
{%- endmacro %}

{#- `ts` moved by `interval` (a number or an integer expression) days, hours, minutes or
    seconds, keeping its fraction of a second (dbt-spark's dateadd drops it). -#}
{% macro timestamp_add(datepart, interval, ts) -%}
    {{ return(adapter.dispatch('timestamp_add', 'shoplens')(datepart, interval, ts)) }}
{%- endmacro %}
{% macro default__timestamp_add(datepart, interval, ts) -%}
    {{ dbt.dateadd(datepart, interval, ts) }}
{%- endmacro %}
{% macro spark__timestamp_add(datepart, interval, ts) -%}
    {%- set position = ['day', 'hour', 'minute', 'second'].index(datepart) -%}
    {%- set parts = [] -%}
    {%- for field in range(7) -%}
        {%- do parts.append('(' ~ interval ~ ')' if field == 3 + position else '0') -%}
    {%- endfor -%}
    {{ ts }} + make_interval({{ parts | join(', ') }})
{%- endmacro %}
