"""The model registry: round trip, hash and version checks before unpickling, feature SQL."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shoplens.ml import registry
from shoplens.ml.registry import RegistryError


@pytest.fixture()
def fitted() -> tuple[Pipeline, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (frame["a"] + 0.3 * rng.normal(size=300) > 0).astype(int)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("rf", RandomForestClassifier(n_estimators=20, random_state=0)),
        ]
    )
    pipe.fit(frame, y)
    return pipe, frame


def _con_with(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema ml")
    reg = registry.registry_frame(rows)
    con.register("reg", reg)
    con.execute("create table ml.model_registry as select * from reg")
    con.unregister("reg")
    return con


def _row(pipe: Pipeline, version: int = 1, threshold: float | None = 0.4) -> dict:
    return registry.registry_row(
        "purchase_intent",
        pipe,
        features=["a", "b"],
        target="purchase_made",
        training_rows=300,
        params={"n_estimators": 20},
        metrics={"test": {"roc_auc": 0.9}},
        threshold=threshold,
        version=version,
    )


def test_loaded_model_scores_like_the_original(fitted: tuple[Pipeline, pd.DataFrame]) -> None:
    pipe, frame = fitted
    con = _con_with([_row(pipe, version=1), _row(pipe, version=2, threshold=0.6)])
    model = registry.load_latest(con, "purchase_intent")
    assert model.version == 2
    assert model.features == ["a", "b"]
    assert model.threshold == pytest.approx(0.6)
    assert model.metrics == {"test": {"roc_auc": 0.9}}
    # Extra columns and a different column order do not matter: the model selects its features.
    shuffled = frame[["b", "a"]].assign(extra=1)
    np.testing.assert_array_equal(model.predict_proba(shuffled), pipe.predict_proba(frame)[:, 1])
    np.testing.assert_array_equal(
        model.predict(frame), (pipe.predict_proba(frame)[:, 1] >= 0.6).astype(int)
    )
    assert registry.load_model(con, "purchase_intent", version=1).threshold == pytest.approx(0.4)


def test_tampered_bytes_are_refused_before_unpickling(
    fitted: tuple[Pipeline, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe, _ = fitted
    row = _row(pipe)
    row["pipeline"] = row["pipeline"][:-1] + bytes([row["pipeline"][-1] ^ 0xFF])
    con = _con_with([row])
    calls: list[object] = []
    monkeypatch.setattr(registry.joblib, "load", lambda *a, **k: calls.append(a))
    with pytest.raises(RegistryError, match="sha256"):
        registry.load_latest(con)
    assert calls == []


def test_other_sklearn_version_is_refused(
    fitted: tuple[Pipeline, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe, _ = fitted
    row = _row(pipe)
    row["sklearn_version"] = "0.24.2"
    con = _con_with([row])
    calls: list[object] = []
    monkeypatch.setattr(registry.joblib, "load", lambda *a, **k: calls.append(a))
    with pytest.raises(RegistryError, match=r"scikit-learn 0\.24\.2"):
        registry.load_latest(con)
    assert calls == []


def test_missing_registry_and_missing_model_are_clear_errors(
    fitted: tuple[Pipeline, pd.DataFrame],
) -> None:
    with pytest.raises(RegistryError, match="run `dbt build` first"):
        registry.load_latest(duckdb.connect())
    con = _con_with([_row(fitted[0])])
    with pytest.raises(RegistryError, match="'category_choice'"):
        registry.load_latest(con, "category_choice")
    with pytest.raises(RegistryError, match="version 7"):
        registry.load_model(con, "purchase_intent", version=7)


def test_missing_feature_column_is_named(fitted: tuple[Pipeline, pd.DataFrame]) -> None:
    con = _con_with([_row(fitted[0])])
    model = registry.load_latest(con)
    with pytest.raises(RegistryError, match="missing from the input: b"):
        model.predict_proba(fitted[1][["a"]])


def test_feature_sql_substitutes_the_relation() -> None:
    con = duckdb.connect()
    con.execute("create schema ml")
    con.execute(
        "create table ml.feature_definitions as select 'early_intent' as feature_set, "
        f"'{registry.RELATION_PLACEHOLDER}' as relation_placeholder, "
        f"'select user_session, count(*) as n from {registry.RELATION_PLACEHOLDER} "
        "group by user_session' as feature_sql"
    )
    con.execute(
        "create table live_events as select * from (values ('s1'), ('s1'), ('s2')) t(user_session)"
    )
    sql = registry.feature_sql(con, "live_events")
    assert registry.RELATION_PLACEHOLDER not in sql
    assert sorted(con.execute(sql).fetchall()) == [("s1", 2), ("s2", 1)]
    with pytest.raises(RegistryError, match="'whole_session'"):
        registry.feature_sql(con, "live_events", "whole_session")


def test_loading_leaves_no_pending_result(fitted: tuple[Pipeline, pd.DataFrame]) -> None:
    """DuckDB 2.0 refuses `con.sql(...)` while an `execute()` result is unfinished: loading a
    model (two versions stored, `limit 1`) and reading feature SQL must read theirs to the end."""
    pipe, _ = fitted
    con = _con_with([_row(pipe, version=1), _row(pipe, version=2)])
    con.execute(
        "create table ml.feature_definitions as select 'early_intent' as feature_set, "
        f"'{registry.RELATION_PLACEHOLDER}' as relation_placeholder, "
        f"'select 1 as x from {registry.RELATION_PLACEHOLDER}' as feature_sql"
    )
    assert registry.load_latest(con, "purchase_intent").version == 2
    assert con.sql("select 41 + 1").fetchall() == [(42,)]
    assert registry.load_model(con, "purchase_intent", 1).version == 1
    assert con.sql("select count(*) from ml.model_registry").fetchall() == [(2,)]
    registry.feature_sql(con, "ml.model_registry")
    assert con.sql("select 'still usable'").fetchall() == [("still usable",)]
