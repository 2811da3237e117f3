{#-
  on-run-end hook (dbt_project.yml): store every dbt invocation and its per-node results in the
  warehouse it ran against, so reports read a warehouse's own test results and freshness from
  the warehouse and never from a target/ folder another warehouse's build may have written.

  ops.dbt_runs              one row per invocation: command, selection, start and end, counts
  ops.dbt_node_results      one row per node the invocation ran: status, failures, timing
  ops.dbt_source_freshness  one row per source checked by `dbt source freshness`

  No absolute path is stored: the selection arguments only (select, exclude, selector,
  full_refresh, vars), never project, target or log paths.
-#}
{% macro store_run_results(results) %}
    {%- if execute -%}
        {%- set args = invocation_args_dict -%}
        {%- set finished = modules.datetime.datetime.now(modules.pytz.utc) -%}
        {%- set ns = namespace(nodes=[], freshness=[], passed=0, failed=0, skipped=0) -%}
        {%- for result in results -%}
            {%- set status = result.status | string | lower -%}
            {%- set node = result.node -%}
            {%- if status in ('success', 'pass') -%}{%- set ns.passed = ns.passed + 1 -%}
            {%- elif status == 'skipped' -%}{%- set ns.skipped = ns.skipped + 1 -%}
            {%- elif status not in ('warn', 'no-op') -%}{%- set ns.failed = ns.failed + 1 -%}
            {%- endif -%}
            {%- set execute_timing = result.timing
                | selectattr('name', 'equalto', 'execute') | list -%}
            {%- set started = execute_timing[0].started_at if execute_timing else none -%}
            {%- set completed = execute_timing[0].completed_at if execute_timing else none -%}
            {%- do ns.nodes.append('(' ~ [
                shoplens_sql_literal(invocation_id),
                shoplens_sql_literal(node.unique_id),
                shoplens_sql_literal(node.resource_type | string),
                shoplens_sql_literal(node.name),
                shoplens_sql_literal(status),
                shoplens_sql_literal(result.failures, 'number'),
                shoplens_sql_literal(result.execution_time, 'number'),
                shoplens_sql_literal(started, 'timestamp'),
                shoplens_sql_literal(completed, 'timestamp'),
                shoplens_sql_literal(result.message | truncate(2000, true) if result.message else none)
            ] | join(', ') ~ ')') -%}
            {%- if node.resource_type | string == 'source' and result.max_loaded_at is defined -%}
                {%- do ns.freshness.append('(' ~ [
                    shoplens_sql_literal(invocation_id),
                    shoplens_sql_literal(node.source_name ~ '.' ~ node.name),
                    shoplens_sql_literal(status),
                    shoplens_sql_literal(result.max_loaded_at, 'timestamp'),
                    shoplens_sql_literal(result.snapshotted_at, 'timestamp'),
                    shoplens_sql_literal(result.age, 'number')
                ] | join(', ') ~ ')') -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set selection = {
            'select': args.get('select') or [],
            'exclude': args.get('exclude') or [],
            'selector': args.get('selector'),
            'resource_types': args.get('resource_types') or [],
            'full_refresh': args.get('full_refresh') or false,
            'vars': args.get('vars') or {}
        } -%}
        {%- set is_full = (not selection.select and not selection.exclude and not selection.selector
                           and not selection.resource_types) -%}
        {%- set statements = ['create schema if not exists ops'] -%}
        {%- set sql -%}
        create table if not exists ops.dbt_runs (
            invocation_id {{ dbt.type_string() }},
            command {{ dbt.type_string() }},
            selector {{ dbt.type_string() }},
            select_args {{ dbt.type_string() }},
            exclude_args {{ dbt.type_string() }},
            full_refresh boolean,
            whole_project boolean,
            arguments {{ dbt.type_string() }},
            dbt_version {{ dbt.type_string() }},
            started_at {{ dbt.type_timestamp() }},
            finished_at {{ dbt.type_timestamp() }},
            nodes integer,
            passed integer,
            failed integer,
            skipped integer
        )
        {%- endset -%}
        {%- do statements.append(sql) -%}
        {%- set sql -%}
        create table if not exists ops.dbt_node_results (
            invocation_id {{ dbt.type_string() }},
            unique_id {{ dbt.type_string() }},
            resource_type {{ dbt.type_string() }},
            node_name {{ dbt.type_string() }},
            status {{ dbt.type_string() }},
            failures {{ dbt.type_bigint() }},
            execution_seconds double,
            started_at {{ dbt.type_timestamp() }},
            completed_at {{ dbt.type_timestamp() }},
            message {{ dbt.type_string() }}
        )
        {%- endset -%}
        {%- do statements.append(sql) -%}
        {%- set sql -%}
        create table if not exists ops.dbt_source_freshness (
            invocation_id {{ dbt.type_string() }},
            source_name {{ dbt.type_string() }},
            status {{ dbt.type_string() }},
            max_loaded_at {{ dbt.type_timestamp() }},
            snapshotted_at {{ dbt.type_timestamp() }},
            age_seconds double
        )
        {%- endset -%}
        {%- do statements.append(sql) -%}
        {%- set sql -%}
        insert into ops.dbt_runs values (
            {{ shoplens_sql_literal(invocation_id) }},
            {{ shoplens_sql_literal(args.get('which')) }},
            {{ shoplens_sql_literal(selection.selector) }},
            {{ shoplens_sql_literal(selection.select | join(' ') or none) }},
            {{ shoplens_sql_literal(selection.exclude | join(' ') or none) }},
            {{ 'true' if selection.full_refresh else 'false' }},
            {{ 'true' if is_full else 'false' }},
            {{ shoplens_sql_literal(tojson(selection)) }},
            {{ shoplens_sql_literal(dbt_version) }},
            {{ shoplens_sql_literal(run_started_at, 'timestamp') }},
            {{ shoplens_sql_literal(finished, 'timestamp') }},
            {{ results | length }},
            {{ ns.passed }},
            {{ ns.failed }},
            {{ ns.skipped }}
        )
        {%- endset -%}
        {%- do statements.append(sql) -%}
        {%- if ns.nodes -%}
            {%- do statements.append('insert into ops.dbt_node_results values\n            '
                ~ ns.nodes | join(',\n            ')) -%}
        {%- endif -%}
        {%- if ns.freshness -%}
            {%- do statements.append('insert into ops.dbt_source_freshness values\n            '
                ~ ns.freshness | join(',\n            ')) -%}
        {%- endif -%}
        {#- Spark SQL runs one statement at a time -#}
        {%- if target.type == 'spark' -%}
            {%- for statement in statements -%}{%- do run_query(statement) -%}{%- endfor -%}
        {%- else -%}
            {{ statements | join(';\n') }};
        {%- endif -%}
    {%- endif -%}
{% endmacro %}

{#- A value as a SQL literal: null, a number, a UTC timestamp or a quoted string (Spark's
    string literals take backslash escapes; two quotes there are two adjacent literals). -#}
{% macro shoplens_sql_literal(value, kind='string') %}
    {%- if value is none -%}null
    {%- elif kind == 'number' -%}{{ value }}
    {%- elif kind == 'timestamp' -%}
        {%- set utc = value.astimezone(modules.pytz.utc) if value.tzinfo else value -%}
        cast('{{ utc.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
    {%- elif target.type == 'spark' -%}'{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- else -%}'{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{% endmacro %}
