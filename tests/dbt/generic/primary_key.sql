{#-
    The column is a primary key: never null and never repeated. One pass over the model instead
    of two (unique + not_null), which matters for views over millions of raw rows.
-#}
{% test primary_key(model, column_name) %}
select {{ column_name }}, count(*) as occurrences
from {{ model }}
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null
{% endtest %}
