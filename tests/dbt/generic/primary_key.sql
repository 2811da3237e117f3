{#-
    The column is a primary key: never null and never repeated. One pass over the model instead
    of two (unique + not_null), which matters for views over millions of raw rows.

    With latest_batch: true (for models that stamp built_at, see macros/latest_batch.sql) only
    the keys of the latest batch are checked, against every row: a key repeated across an old
    and a new row is still found, and the old rows were checked by the build that wrote them.
-#}
{% test primary_key(model, column_name, latest_batch=false) %}
select {{ column_name }}, count(*) as occurrences
from {{ model }}
{%- if latest_batch and not var('test_all_rows') %}
where {{ column_name }} in (
        select {{ column_name }} from {{ model }} where {{ in_latest_batch(model) }}
    )
    or ({{ column_name }} is null and {{ in_latest_batch(model) }})
{%- endif %}
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null
{% endtest %}
