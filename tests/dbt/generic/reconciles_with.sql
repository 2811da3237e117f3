{#-
    Reconciliation: sum(<column>) over the model (optionally filtered by `where`) must equal
    sum(<compare_expression>) over `compare_model` (filtered by `compare_where`) within
    `tolerance` (a fraction of the larger absolute total; 0 = exact). Returns one failing row
    with both totals when they differ by more.
-#}
{% test reconciles_with(
    model, column_name, compare_model, compare_expression, compare_where=None, tolerance=0
) %}
with left_side as (
    select coalesce(sum({{ column_name }}), 0) as total from {{ model }}
),

right_side as (
    select coalesce(sum({{ compare_expression }}), 0) as total
    from {{ compare_model }}
{%- if compare_where %}
    where {{ compare_where }}
{%- endif %}
)

select
    left_side.total as model_total,
    right_side.total as compare_total
from left_side
cross join right_side
where abs(left_side.total - right_side.total)
    > {{ tolerance }} * (case when abs(left_side.total) > abs(right_side.total)
                             then abs(left_side.total) else abs(right_side.total) end)
{% endtest %}
