"""shoplens.ml.refresh: ml.session_recommendations is kept without loading the category model
exactly when changed_rows would hand the model no row."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from shoplens.ml import category, refresh

BUILT = dt.datetime(2026, 11, 30, 10, 0, 0, 123456)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    """A training table with the category model at version 3 (and another model), features
    built at BUILT, and recommendations computed from both."""
    con = duckdb.connect()
    con.execute(
        "create table training as select * from (values "
        "('category_choice', 3, 'pipeline bytes'), ('segments', 7, 'other bytes')) "
        "t(model_name, version, pipeline)"
    )
    con.execute(
        "create table features as select 's' || i as session_id, 'k' || i as sessionization_key, "
        "? ::timestamp as built_at from range(4) r(i)",
        [BUILT],
    )
    con.execute(
        "create table recs as select session_id, 3 as model_version, "
        "built_at as features_built_at from features"
    )
    return con


def _agree(con: duckdb.DuckDBPyConnection, incremental: bool = True) -> bool:
    """recommendations_current, checked against the rows changed_rows would recommend for."""
    training, features = con.table("training"), con.table("features")
    current = refresh.recommendations_current(con, "recs", incremental, training, features)
    version = refresh.model_version(training, refresh.CATEGORY_MODEL) or 0
    rows = refresh.changed_rows(con, "recs", incremental, features, version)
    assert current == (rows.shape[0] == 0)
    return current


def test_category_model_name_is_the_category_module_one() -> None:
    assert refresh.CATEGORY_MODEL == category.MODEL


def test_model_version_reads_the_named_model_only(con: duckdb.DuckDBPyConnection) -> None:
    assert refresh.model_version(con.table("training"), "category_choice") == 3
    assert refresh.model_version(con.table("training"), "segments") == 7
    assert refresh.model_version(con.table("training"), "absent") is None


def test_nothing_new_keeps_the_recommendations(con: duckdb.DuckDBPyConnection) -> None:
    assert _agree(con) is True


def test_one_rebuilt_feature_row_refreshes(con: duckdb.DuckDBPyConnection) -> None:
    later = BUILT + dt.timedelta(microseconds=1)
    con.execute("update features set built_at = ? where session_id = 's2'", [later])
    assert _agree(con) is False


def test_a_new_model_version_refreshes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("update training set version = 4 where model_name = 'category_choice'")
    assert _agree(con) is False


def test_mixed_versions_refresh(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("update recs set model_version = 2 where session_id = 's0'")
    assert _agree(con) is False


def test_full_build_empty_or_missing_table_refreshes(con: duckdb.DuckDBPyConnection) -> None:
    assert _agree(con, incremental=False) is False
    con.execute("delete from recs")
    assert _agree(con) is False
    training, features = con.table("training"), con.table("features")
    assert not refresh.recommendations_current(con, "missing", True, training, features)


def test_no_category_model_refreshes(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("delete from training where model_name = 'category_choice'")
    training, features = con.table("training"), con.table("features")
    assert not refresh.recommendations_current(con, "recs", True, training, features)
