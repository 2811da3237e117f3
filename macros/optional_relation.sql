{#-
    `relation` when it exists in the warehouse, else an empty subquery with `columns` (a list of
    [name, type] pairs), so that a model reading it builds on any warehouse:
    - live.session_scores exists only once the live scorer has scored a session;
    - the ml tables are missing when a selection leaves models/ml out (`--exclude
      path:models/ml`, the after_burst selector on a warehouse never fully built).
    The ref() or source() passed in still records the dependency, so a full build orders the
    models as usual. Use it without an alias, `from {{ relation_or_empty(ref('x'), [...]) }}`
    (the empty stand-in brings its own).
-#}
{% macro relation_or_empty(relation, columns) -%}
    {%- if not execute or load_relation(relation) is not none -%}
        {{ relation }}
    {%- else -%}
        (
            select
            {%- for name, type in columns %}
                cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        ) as empty_relation
    {%- endif -%}
{%- endmacro %}
