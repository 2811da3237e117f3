{#-
    Fails for every row where `<column> <expression>` (or, at model level without a column,
    `<expression>`) is not true. Rows where it is null fail too, unless the column is null.
-#}
{% test expression_is_true(model, expression, column_name=None) %}
select *
from {{ model }}
{% if column_name -%}
where {{ column_name }} is not null and not coalesce({{ column_name }} {{ expression }}, false)
{%- else -%}
where not coalesce({{ expression }}, false)
{%- endif %}
{% endtest %}
