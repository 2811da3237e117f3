{#- Use the configured schema name as is (staging, intermediate, marts, ml, reference), so
    ad-hoc SQL reads `marts.fct_sessions` rather than `main_marts.fct_sessions`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
