"""Every order line with the category-choice model's prediction and its split."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import category_lines, order_line_predictions

    lines = category_lines(dbt.ref("stg_shop__transactions").df(),
                           dbt.ref("stg_shop__customers").df())
    return order_line_predictions(dbt.ref("category_training").df(), lines)
