{#- Post-hook of ml.model_registry: keep the last `ml_registry_keep_versions` versions of every
    model, plus every version a training table holds (the deployed models), and delete the rest
    with their pipeline BLOBs. DuckDB reuses the freed blocks after its next checkpoint (at the
    latest when dbt closes the warehouse). -#}
{% macro ml_prune_registry(registry, trainings) -%}
  {%- set keep = var('ml_registry_keep_versions') | int -%}
  {%- if keep < 1 -%}
    {{ exceptions.raise_compiler_error(
        "var ml_registry_keep_versions must be at least 1, got "
        ~ var('ml_registry_keep_versions')
    ) }}
  {%- endif -%}
  delete from {{ registry }} as old
  where old.version <= (
      select max(newest.version) from {{ registry }} as newest
      where newest.model_name = old.model_name
    ) - {{ keep }}
  {%- for training in trainings %}
    and not exists (
      select 1 from {{ training }} as deployed
      where deployed.model_name = old.model_name and deployed.version = old.version
    )
  {%- endfor %}
{%- endmacro %}


{#- Post-hook of every ml model: dbt-duckdb 1.11 writes the frame an incremental Python model
    returns into a real table main.<model>__dbt_tmp<timestamp> and never drops it, so every
    build left a copy of each new frame (training pipelines included) in the warehouse. This
    drops this model's leftovers, older ones included. -#}
{% macro ml_drop_python_frames(relation) -%}
  {%- if execute -%}
    {%- set leftovers = run_query(
        "select table_name from information_schema.tables where table_catalog = '"
        ~ relation.database ~ "' and table_schema = 'main' and starts_with(table_name, '"
        ~ relation.identifier ~ "__dbt_tmp')") -%}
    {%- for row in leftovers.rows -%}
      drop table if exists "{{ relation.database }}"."main"."{{ row[0] }}";
    {% endfor -%}
  {%- endif -%}
{%- endmacro %}
