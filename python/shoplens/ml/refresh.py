"""Nothing to refresh: decided in DuckDB before an ml model imports scikit-learn or loads a
pipeline.

A build with no new data keeps ml.session_recommendations as it is (`changed_rows` hands it no
row), but finding that out after loading the model costs importing scikit-learn and unpickling
the category forest: about a second of CPU in every `dbt build`. The deployed version is read
from the version column of ml.category_training, with no pipeline bytes.
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


def changed_rows(
    con: duckdb.DuckDBPyConnection,
    this: Any,
    incremental: bool,
    features: duckdb.DuckDBPyRelation,
    model_version: int,
) -> duckdb.DuckDBPyRelation:
    """The rows of `features` (int_sessions_category_featurized) to recommend for: those built
    after the newest features_built_at of table `this` when every row there comes from
    `model_version`, else all of them (a relation: nothing is loaded here)."""
    if incremental:
        try:
            low, high, built = con.execute(
                f"select min(model_version), max(model_version), max(features_built_at) from {this}"
            ).fetchall()[0]
        except (duckdb.CatalogException, duckdb.BinderException):  # no table, or an older one
            return features
        if low == high == model_version and built is not None:
            return features.filter(
                duckdb.ColumnExpression("built_at") > duckdb.ConstantExpression(built)
            )
    return features


def recommendations_current(
    con: duckdb.DuckDBPyConnection,
    this: Any,
    incremental: bool,
    training: duckdb.DuckDBPyRelation,
    features: duckdb.DuckDBPyRelation,
) -> bool:
    """True when an incremental build of table `this` (ml.session_recommendations) has no row
    to recommend for with the deployed category model (`changed_rows` is empty)."""
    version = model_version(training, CATEGORY_MODEL)
    if not incremental or version is None:
        return False
    return changed_rows(con, this, incremental, features, version).limit(1).fetchall() == []
