{#-
    The k-th decile edge (k = 1..9) of `expression` in a group: percentile_cont(k / 10), the
    linear interpolation between the two nearest ordered values. On DuckDB all nine edges come
    from one quantile_cont over the list of the nine fractions, so each group's values are
    ordered once, not once per edge (DuckDB computes the repeated aggregate once); the values
    are the same. Used by mon_feature_bins.
-#}
{% macro decile_edge(expression, k) -%}
    {{ return(adapter.dispatch('decile_edge', 'shoplens')(expression, k)) }}
{%- endmacro %}
{% macro default__decile_edge(expression, k) -%}
    percentile_cont({{ k / 10 }}) within group (order by {{ expression }})
{%- endmacro %}
{% macro duckdb__decile_edge(expression, k) -%}
    quantile_cont({{ expression }}, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])[{{ k }}]
{%- endmacro %}
