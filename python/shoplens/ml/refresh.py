"""Nothing to refresh: decided in DuckDB before an ml model imports scikit-learn or loads a
pipeline.

A build with no new data keeps ml.session_recommendations as it is (shoplens.ml.recommend's
changed_rows would hand it no row), but finding that out through the model's usual path costs
importing scikit-learn and unpickling the category forest: about a second of CPU in every
`dbt build`. `recommendations_current` answers the same question from the version column of
ml.category_training and two aggregates, and reads no pipeline bytes.
"""

from __future__ import annotations

from typing import Any

import duckdb

# shoplens.ml.category.MODEL (not imported: that module imports scikit-learn); a test holds
# them equal.
CATEGORY_MODEL = "category_choice"


def model_version(training: duckdb.DuckDBPyRelation, model_name: str) -> int | None:
    """The version of `model_name` in a training relation (ml.category_training and the
    like), or None when the build could not train it; only the name and version columns are
    read."""
    rows = (
        training.filter(
            duckdb.ColumnExpression("model_name") == duckdb.ConstantExpression(model_name)
        )
        .project("version")
        .fetchall()
    )
    return int(rows[0][0]) if rows else None


def recommendations_current(
    con: duckdb.DuckDBPyConnection,
    this: Any,
    incremental: bool,
    training: duckdb.DuckDBPyRelation,
    features: duckdb.DuckDBPyRelation,
) -> bool:
    """True when table `this` (ml.session_recommendations) holds rows of the deployed category
    model's version only, and `features` (int_sessions_category_featurized) has no row built
    after the newest features_built_at among them: the same test as recommend.changed_rows,
    which would then return no row."""
    if not incremental:
        return False
    version = model_version(training, CATEGORY_MODEL)
    if version is None:
        return False
    try:
        low, high, built = con.execute(
            f"select min(model_version), max(model_version), max(features_built_at) from {this}"
        ).fetchall()[0]
    except (duckdb.CatalogException, duckdb.BinderException):  # no table, or an older one
        return False
    if built is None or not low == high == version:
        return False
    newer = features.filter(duckdb.ColumnExpression("built_at") > duckdb.ConstantExpression(built))
    return newer.limit(1).fetchall() == []
