{#- Post-hook (outside the transaction) of the seeds and of the intermediate and marts models,
    which dbt rewrites on every build: DuckDB frees the blocks of a replaced table only at a
    checkpoint, so without one every table of a build is written to new blocks and a build
    with no new data grew the warehouse file by the size of everything it rewrote (about 4 MB
    at 3,000 sessions; measured in bench/bench_rebuild.py). FORCE waits for the other dbt
    thread's open write transaction instead of failing. Nothing on other engines. -#}
{% macro checkpoint_freed_blocks() -%}
  {%- if target.type == 'duckdb' -%}force checkpoint{%- endif -%}
{%- endmacro %}
