{#-
    Spark target: register source tables over Parquet folders `<location>/<schema>/<table>/`, as
    `shoplens spark-load` writes them or as a lake keeps them. `tables` lists which
    ('raw.events', ...); by default every table of the sources (schemas raw and live). Each is
    dropped and created again (an external table: dropping it keeps the files), so a changed
    schema is picked up. Run by `shoplens spark-load`, or by hand:
    dbt run-operation register_raw_tables --target spark --args '{location: /lake/root}'
-#}
{% macro register_raw_tables(location, tables=none) %}
    {%- if target.type != 'spark' -%}
        {{ exceptions.raise_compiler_error(
            "register_raw_tables is for the spark target, not " ~ target.type) }}
    {%- endif -%}
    {%- set ns = namespace(names=tables or []) -%}
    {%- if tables is none -%}
        {%- for source_node in graph.sources.values() -%}
            {%- do ns.names.append(source_node.schema ~ '.' ~ source_node.identifier) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- for name in ns.names | unique | sort -%}
        {%- set schema, identifier = name.split('.') -%}
        {%- do run_query('create schema if not exists ' ~ schema) -%}
        {%- do run_query('drop table if exists ' ~ name) -%}
        {%- do run_query('create table ' ~ name ~ " using parquet location '"
            ~ location ~ '/' ~ schema ~ '/' ~ identifier ~ "'") -%}
    {%- endfor -%}
    {%- do log('registered ' ~ ns.names | unique | sort | join(', ') ~ ' from ' ~ location,
        info=true) -%}
{% endmacro %}


{#-
    dbt-spark's seed loader (session method) pastes each value into the INSERT as '<value>': an
    empty cell arrives as the string 'None' and a value with a quote breaks the statement. This
    one writes SQL literals: null for an empty cell, strings escaped. Same types as dbt-spark's.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for col_name in agate_table.column_names -%}
        {%- set inferred = adapter.convert_type(agate_table, loop.index0) -%}
        {%- do types.append(column_override.get(col_name, inferred)) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for value in row -%}
                    cast({{ shoplens_seed_literal(value) }} as {{ types[loop.index0] }})
                    {{- ", " if not loop.last -}}
                {%- endfor -%}){{ "," if not loop.last }}
            {% endfor -%}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0]) }}
{% endmacro %}

{#- A seed cell as a Spark SQL literal (backslash escapes, Spark's default). -#}
{% macro shoplens_seed_literal(value) -%}
    {%- if value is none -%}null
    {%- elif value is sameas true -%}true
    {%- elif value is sameas false -%}false
    {%- elif value is number -%}{{ value }}
    {%- else -%}'{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}


{#-
    dbt's run_hooks without the `commit;` it sends before the hooks that run outside the
    transaction: dbt-duckdb's own override (DuckDB has no transaction open there), which a
    project macro of this name replaces, and what Spark needs (Spark SQL has no COMMIT: dbt's
    seed materialisation failed on every seed).
-#}
{% macro run_hooks(hooks, inside_transaction=True) %}
  {% for hook in hooks | selectattr('transaction', 'equalto', inside_transaction) %}
    {% set rendered = render(hook.get('sql')) | trim %}
    {% if (rendered | length) > 0 %}
      {% call statement(auto_begin=inside_transaction) %}
        {{ rendered }}
      {% endcall %}
    {% endif %}
  {% endfor %}
{% endmacro %}


{#-
    on-run-end hook (dbt_project.yml): with `--vars '{parquet_export_dir: /some/folder}'` on the
    spark target, write every relation of the project that exists (seeds, models, the
    sources and ops.*) as Parquet to `<folder>/<schema>/<name>/`, after ops.* got this run's
    results. The DuckDB side reads them: `shoplens report --marts-parquet <folder>` builds the
    report site from them, and the parity test compares them with a DuckDB build. Nothing
    without the var.
-#}
{% macro export_relations_parquet() %}
    {%- set folder = var('parquet_export_dir', none) -%}
    {%- if execute and folder -%}
        {%- if target.type != 'spark' -%}
            {{ exceptions.raise_compiler_error(
                "var parquet_export_dir is for the spark target, not " ~ target.type) }}
        {%- endif -%}
        {%- set names = [] -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type in ['model', 'seed']
                    and node.config.materialized != 'ephemeral' -%}
                {%- do names.append(node.schema ~ '.' ~ node.alias) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for source_node in graph.sources.values() -%}
            {%- do names.append(source_node.schema ~ '.' ~ source_node.identifier) -%}
        {%- endfor -%}
        {%- do names.extend(
            ['ops.dbt_runs', 'ops.dbt_node_results', 'ops.dbt_source_freshness']) -%}
        {%- for name in names | unique | sort -%}
            {%- set schema, identifier = name.split('.') -%}
            {%- set relation = adapter.get_relation(
                database=none, schema=schema, identifier=identifier) -%}
            {%- if relation is not none -%}
                {%- do run_query("insert overwrite directory '" ~ folder ~ '/' ~ schema ~ '/'
                    ~ identifier ~ "' using parquet select * from " ~ relation) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
