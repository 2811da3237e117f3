{#-
    The model has exactly as many rows as `compare_model`: for a view that projects a tested
    table 1:1, this carries the parent's grain tests over at the cost of two counts.
-#}
{% test same_row_count_as(model, compare_model) %}
select model_rows, compare_rows
from (
    select
        (select count(*) from {{ model }}) as model_rows,
        (select count(*) from {{ compare_model }}) as compare_rows
) as counts
where model_rows <> compare_rows
{% endtest %}
