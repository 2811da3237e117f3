{#-
    Tests of the big incremental models check the rows of the latest build, not all of history.

    int_events_sessionized, int_sessions_aggregated, int_sessions_early_featurized and
    int_sessions_category_featurized stamp every row they write with built_at, the start time of
    the dbt run that wrote it. An incremental build rewrites only what new events touched, so the
    rows of the latest batch (built_at equal to its maximum) are the only ones that can have
    changed since the build before, whose tests passed, as long as the models' SQL is the same
    (after changing it, build with --full-refresh or test with test_all_rows). A full refresh
    stamps every row alike, so its tests read everything, and `--vars '{test_all_rows: true}'`
    makes any build or `dbt test` check every row.
-#}

{#- The literal start time of this dbt run, the value of built_at for the rows it writes. -#}
{% macro this_run_started_at() %}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}


{#- A predicate on `relation`'s rows: true for the rows of its latest batch (or for every row). -#}
{% macro in_latest_batch(relation, column='built_at', alias=none) %}
    {%- if var('test_all_rows') -%}
        1 = 1
    {%- else -%}
        {{ alias ~ '.' if alias }}{{ column }} = (select max({{ column }}) from {{ relation }})
    {%- endif -%}
{%- endmacro %}


{#-
    dbt's hook for a test's `where` config (dbt documents overriding it), extended with one
    placeholder: `where: "__latest_batch__"` checks only the rows of the model's latest batch.
    The `where` config is rendered when the project is parsed; this runs when the test does.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set where = where | replace('__latest_batch__', in_latest_batch(relation)) -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
