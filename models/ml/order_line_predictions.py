"""Every order line with the category-choice model's prediction and its split."""


def model(dbt, session):
    dbt.config(materialized="table")
    from shoplens.ml.build import order_line_predictions

    return order_line_predictions(dbt.ref("category_training").df(),
                                  dbt.ref("fct_order_lines").df())
