{#- DuckDB: a build keeps a table model or seed whose new rows equal the stored ones.

    dbt replaces every table model and reloads every seed on each build. On DuckDB a replaced
    table is written to new blocks while its old blocks stay in use until the next checkpoint,
    so a build with no new data rewrote 25 small tables and the warehouse file grew by the
    blocks that were briefly needed twice (bench/bench_rebuild.py). Here a table model is still
    built in full, inside its transaction, and compared with the stored table (same column
    names and types, same row digest): when nothing differs the new copy is dropped before the
    commit and the stored table is kept as it is, blocks included. A seed is loaded into a
    temporary table (in memory) and its rows replace the stored ones only when they differ.
    Descriptions are persisted either way. Other engines keep dbt's own materializations. -#}

{#- Order-independent digest of every row of `relation`: row count, sum and xor of 64-bit row
    hashes (the same digest shoplens.ml.reuse fingerprints training sets with). The alias is the
    whole row as a struct; an unlikely name, so that no column shadows it. -#}
{% macro shoplens_row_digest(relation) -%}
    select
        count(*) as n,
        coalesce(sum(hash(shoplens_digest_row)), 0) as s,
        coalesce(bit_xor(hash(shoplens_digest_row)), 0) as x
    from {{ relation }} as shoplens_digest_row
{%- endmacro %}

{#- SQL giving one boolean: do `a` and `b` hold the same rows? -#}
{% macro shoplens_same_rows(a, b) -%}
    select new_rows.n = old_rows.n and new_rows.s = old_rows.s and new_rows.x = old_rows.x
    from ({{ shoplens_row_digest(a) }}) as new_rows, ({{ shoplens_row_digest(b) }}) as old_rows
{%- endmacro %}

{#- True when `new` and `old` have the same columns (names, types, order) and the same rows: one
    query (the rows are digested only when the columns match). -#}
{% macro shoplens_same_table(new, old) -%}
    {%- set sql -%}
        with listed as (
            select
                table_name,
                string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position)
                    as columns
            from information_schema.columns
            where table_catalog = '{{ old.database }}' and table_schema = '{{ old.schema }}'
                and table_name in ('{{ new.identifier }}', '{{ old.identifier }}')
            group by table_name
        )
        select case
            when (select columns from listed where table_name = '{{ new.identifier }}')
                = (select columns from listed where table_name = '{{ old.identifier }}')
            then ({{ shoplens_same_rows(new, old) }})
            else false
        end
    {%- endset -%}
    {{ return(run_query(sql).columns[0].values()[0]) }}
{%- endmacro %}


{#- dbt-duckdb 1.11's table materialization, with the comparison before the swap. -#}
{% materialization table, adapter="duckdb", supported_languages=['sql', 'python'] %}

  {%- set language = model['language'] -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') %}
  {%- set intermediate_relation =  make_intermediate_relation(target_relation) -%}
  {%- set preexisting_intermediate_relation = load_cached_relation(intermediate_relation) -%}
  {%- set backup_relation_type =
      'table' if existing_relation is none else existing_relation.type -%}
  {%- set backup_relation = make_backup_relation(target_relation, backup_relation_type) -%}
  {%- set preexisting_backup_relation = load_cached_relation(backup_relation) -%}
  {%- set use_ducklake_table_workarounds =
      adapter.use_ducklake_table_workarounds(target_relation) -%}
  {%- set build_in_place = has_foreign_key_constraints(existing_relation) -%}
  {%- set dropped_dependents = [] -%}
  {%- set kept = false -%}
  {% set grant_config = config.get('grants') %}

  {{ drop_relation_if_exists(preexisting_intermediate_relation) }}
  {{ drop_relation_if_exists(preexisting_backup_relation) }}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}

  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {%- set partitioned_by = duckdb__get_partitioned_by(target_relation, false) -%}
  {%- set sorted_by = duckdb__get_sorted_by(target_relation, false) -%}

  {% if build_in_place %}
    {% if existing_relation is not none %}
      {% set dropped_dependents = drop_relation_for_rebuild(existing_relation) %}
    {% endif %}
    {% call statement('main', language=language) -%}
      {{- create_table_as(False, target_relation, compiled_code, language, partitioned_by=partitioned_by, sorted_by=sorted_by) }}
    {%- endcall %}
    {% do restore_foreign_key_dependents(dropped_dependents) %}
  {% else %}
    {% call statement('main', language=language) -%}
      {{- create_table_as(False, intermediate_relation, compiled_code, language, partitioned_by=partitioned_by, sorted_by=sorted_by) }}
    {%- endcall %}

    {%- set kept = existing_relation is not none and existing_relation.is_table
        and not use_ducklake_table_workarounds
        and shoplens_same_table(intermediate_relation, existing_relation) -%}
    {% if kept %}
      {#- Dropped inside the transaction that created it: the file never sees it. -#}
      {% do adapter.drop_relation(intermediate_relation) %}
    {% else %}
      {% if existing_relation is not none %}
          {% do drop_indexes_on_relation(existing_relation) %}
          {% if existing_relation.is_table and may_be_foreign_key_target(existing_relation) %}
            {% set dropped_dependents = drop_foreign_key_dependents(existing_relation) %}
          {% endif %}
          {{ adapter.rename_relation(existing_relation, backup_relation) }}
      {% endif %}

      {{ adapter.rename_relation(intermediate_relation, target_relation) }}
      {% do restore_foreign_key_dependents(dropped_dependents) %}
    {% endif %}
  {% endif %}

  {% if not kept %}
    {% do create_indexes(target_relation) %}
  {% endif %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
  {% if not use_ducklake_table_workarounds %}
    {% do persist_docs(target_relation, model) %}
  {% endif %}

  -- `COMMIT` happens here
  {{ adapter.commit() }}

  {% if use_ducklake_table_workarounds %}
    {% if partitioned_by %}
      {% call statement('reassert_partitioned_by', auto_begin=False) -%}
        {{ duckdb__alter_table_set_partitioned_by(target_relation, partitioned_by) }}
      {%- endcall %}
    {% endif %}
    {% if sorted_by %}
      {% call statement('reassert_sorted_by', auto_begin=False) -%}
        {{ duckdb__alter_table_set_sorted_by(target_relation, sorted_by) }}
      {%- endcall %}
    {% endif %}
    {% do persist_docs(target_relation, model) %}
  {% endif %}

  {% if not kept %}
    {{ drop_relation_if_exists(backup_relation) }}
  {% endif %}

  {#- A kept table freed no blocks: its checkpoint hook (checkpoint_freed_blocks) is skipped. -#}
  {{ run_hooks(shoplens_without_checkpoints(post_hooks) if kept else post_hooks,
               inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}


{#- `hooks` less those that render to checkpoint_freed_blocks()'s statement. -#}
{% macro shoplens_without_checkpoints(hooks) -%}
  {%- set checkpoint = checkpoint_freed_blocks() | trim -%}
  {%- set kept_hooks = [] -%}
  {%- for hook in hooks -%}
    {%- if not checkpoint or render(hook.get('sql')) | trim != checkpoint -%}
      {%- do kept_hooks.append(hook) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(kept_hooks) }}
{%- endmacro %}


{#- Seeds: the stored rows are replaced only when the file's differ (full refresh: dbt's way). -#}
{% macro duckdb__reset_csv_table(model, full_refresh, old_relation, agate_table) %}
    {#- dbt loads no rows from a file with none: those tables are emptied here. -#}
    {% if full_refresh or not config.get('fast', true) or agate_table.rows | length == 0 %}
        {{ return(default__reset_csv_table(model, full_refresh, old_relation, agate_table)) }}
    {% endif %}
    {{ return("-- rows replaced below only if the file's rows differ") }}
{% endmacro %}

{% macro duckdb__load_csv_rows(model, agate_table) %}
    {% if not config.get('fast', true) %}
        {{ return(default__load_csv_rows(model, agate_table)) }}
    {% endif %}
    {% set seed_file_path = adapter.get_seed_file_path(model) %}
    {% set delimiter = config.get('delimiter', ',') %}
    {% set loaded = adapter.quote(this.identifier ~ '__dbt_loaded') %}
    {% set sql %}
      create or replace temp table {{ loaded }} as select * from {{ this.render() }} limit 0;
      copy {{ loaded }} from '{{ seed_file_path }}' (format csv, header true, delimiter '{{ delimiter }}');
      create or replace temp table {{ adapter.quote(this.identifier ~ '__dbt_differs') }} as
        select not ({{ shoplens_same_rows(loaded, this.render()) }}) as differs;
      delete from {{ this.render() }}
        where (select differs from {{ adapter.quote(this.identifier ~ '__dbt_differs') }});
      insert into {{ this.render() }} select * from {{ loaded }}
        where (select differs from {{ adapter.quote(this.identifier ~ '__dbt_differs') }});
      drop table {{ loaded }};
      drop table {{ adapter.quote(this.identifier ~ '__dbt_differs') }}
    {% endset %}
    {% do adapter.add_query(sql, abridge_sql_log=True) %}
    {{ return(sql) }}
{% endmacro %}


{#- Descriptions (persist_docs): only the comments that differ from the stored ones are written,
    read in one query (dbt-duckdb lists the columns twice and rewrites every comment, and each
    comment is a catalog change the next checkpoint writes out). -#}
{% macro duckdb__persist_docs(relation, model, for_relation, for_columns) -%}
  {%- set wants_relation = for_relation and config.persist_relation_docs() and model.description -%}
  {%- set wants_columns = for_columns and config.persist_column_docs() and model.columns -%}
  {%- if not (wants_relation or wants_columns) -%}{{ return('') }}{%- endif -%}
  {%- set where -%}
    database_name = '{{ relation.database }}' and schema_name = '{{ relation.schema }}'
  {%- endset -%}
  {%- set stored_sql -%}
    select true as is_relation, null as column_name, comment from duckdb_tables()
    where {{ where }} and table_name = '{{ relation.identifier }}'
    union all
    select true, null, comment from duckdb_views()
    where {{ where }} and view_name = '{{ relation.identifier }}'
    union all
    select false, column_name, comment from duckdb_columns()
    where {{ where }} and table_name = '{{ relation.identifier }}'
  {%- endset -%}
  {%- set stored = {'columns': {}, 'relation': none} -%}
  {%- for row in run_query(stored_sql).rows -%}
    {%- if row[0] -%}{%- do stored.update({'relation': row[2]}) -%}
    {%- else -%}{%- do stored['columns'].update({row[1]: row[2]}) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- set statements = [] -%}
  {%- if wants_relation and stored['relation'] != model.description -%}
    {%- do statements.append(duckdb__alter_relation_comment(relation, model.description)) -%}
  {%- endif -%}
  {%- if wants_columns -%}
    {%- for name, column in model.columns.items()
        if name in stored['columns'] and stored['columns'][name] != column['description'] -%}
      {%- do statements.append(
          'comment on column ' ~ relation ~ '.'
          ~ (adapter.quote(name) if column['quote'] else name)
          ~ ' is ' ~ duckdb_escape_comment(column['description']) ~ ';') -%}
    {%- endfor -%}
  {%- endif -%}
  {%- if statements -%}
    {%- do run_query(statements | join('\n')) -%}
  {%- endif -%}
{%- endmacro %}
