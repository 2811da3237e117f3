"""The ml models on the built warehouse (fixture `built_warehouse`): tables, values, acceptance.

Figures asserted here are the issue's acceptance checks: the segmentation recovers the designed
personas (ARI >= 0.8 against ground_truth, used only here) and the deployed early-intent model
beats its majority baseline on the time-based hold-out.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from shoplens.ml import build, intent, recommend, registry, reuse


@pytest.fixture(scope="module")
def con(built_warehouse: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(built_warehouse), read_only=True)
    yield connection
    connection.close()


def _df(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.execute(sql).df()


def test_registry_holds_every_model_once_per_build(con: duckdb.DuckDBPyConnection) -> None:
    reg = _df(
        con,
        "select model_name, version, training_rows, threshold, pipeline_bytes, "
        "sklearn_version from ml.model_registry",
    )
    assert set(reg["model_name"]) == {
        "purchase_intent",
        "purchase_intent_stratified",
        "session_study_replication",
        "session_study_replication_no_leak",
        "category_choice",
        "customer_segments",
        "customer_segments_pca",
    }
    assert (reg["version"] == 1).all()
    assert (reg["training_rows"] > 0).all()
    assert (reg["pipeline_bytes"] < 20_000_000).all()
    binary = reg[reg["model_name"].str.startswith(("purchase", "session"))]
    assert binary["threshold"].between(0, 1).all()


def test_deployed_model_loads_and_scores_like_the_build(con: duckdb.DuckDBPyConnection) -> None:
    model = registry.load_latest(con, "purchase_intent")
    definition = _df(
        con, "select feature_columns from ml.feature_definitions where feature_set = 'early_intent'"
    )
    assert sorted(model.features) == sorted(definition["feature_columns"].iloc[0].split(","))
    features = _df(
        con,
        "select * from intermediate.int_sessions_early_featurized "
        "where events_so_far > 0 order by session_id limit 300",
    )
    scored = _df(
        con,
        "select session_id, probability, predicted from ml.session_predictions "
        "where model_name = 'purchase_intent'",
    ).set_index("session_id")
    expected = scored.loc[features["session_id"]]
    np.testing.assert_allclose(model.predict_proba(features), expected["probability"])
    np.testing.assert_array_equal(model.predict(features).astype(bool), expected["predicted"])


def test_stored_feature_sql_reproduces_the_training_features(
    con: duckdb.DuckDBPyConnection,
) -> None:
    sql = registry.feature_sql(con, "intermediate.int_events_sessionized")
    live = con.execute(f"select * from ({sql}) order by session_id").df()
    trained = _df(
        con, "select * from intermediate.int_sessions_early_featurized order by session_id"
    )
    columns = registry.load_latest(con).features
    merged = trained[["session_id", *columns]].merge(
        live[["session_id", *columns]], on="session_id", suffixes=("", "_live")
    )
    assert len(merged) == len(trained)
    for col in columns:
        pd.testing.assert_series_equal(
            merged[col], merged[f"{col}_live"], check_names=False, check_dtype=False
        )


def test_early_intent_model_beats_baseline_on_the_time_holdout(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = _df(
        con,
        "select metric, value, baseline_value, beats_baseline, n_rows "
        "from ml.model_metrics where model_name = 'purchase_intent' "
        "and evaluation = 'time_holdout' and split = 'test'",
    ).set_index("metric")
    assert set(rows.index) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "brier",
    }
    for metric in ("f1", "roc_auc", "pr_auc", "brier"):
        assert rows.loc[metric, "beats_baseline"], metric
    assert rows.loc["roc_auc", "value"] > 0.75
    assert rows.loc["roc_auc", "baseline_value"] == pytest.approx(0.5)
    # The test split is the latest weeks: no test session starts before a training session ends.
    spans = _df(
        con,
        "select p.split, min(s.session_start) lo, max(s.session_start) hi "
        "from ml.session_predictions p join marts.fct_sessions s using (session_id) "
        "where p.model_name = 'purchase_intent' group by p.split",
    ).set_index("split")
    assert spans.loc["test", "lo"] > spans.loc["train", "hi"]


def test_replication_shows_the_leak(con: duckdb.DuckDBPyConnection) -> None:
    leak = _df(con, "select * from ml.leakage_comparison")
    flagged = set(leak.loc[leak["leaks"], "feature"])
    assert {"checkouts", "revenue", "units_purchased"} <= flagged
    assert not leak.loc[leak["feature_set"] == "early_intent", "leaks"].any()
    acc = _df(
        con,
        "select model_name, value from ml.model_metrics where split = 'test' "
        "and metric = 'accuracy'",
    ).set_index("model_name")["value"]
    assert acc["session_study_replication"] > 0.99
    assert acc["session_study_replication_no_leak"] < acc["session_study_replication"] - 0.02


def test_curves_confusion_and_importances_are_consistent(
    con: duckdb.DuckDBPyConnection,
) -> None:
    curves = _df(con, "select * from ml.model_curves where model_name = 'purchase_intent'")
    assert curves["x"].between(0, 1).all() and curves["y"].between(0, 1).all()
    roc = curves[curves["curve"] == "roc"].sort_values("point")
    assert roc["x"].is_monotonic_increasing and roc["y"].iloc[-1] == 1.0
    cells = _df(
        con, "select sum(count) n from ml.confusion_matrices where model_name = 'purchase_intent'"
    )["n"].iloc[0]
    n_test = _df(
        con,
        "select count(*) n from ml.session_predictions "
        "where model_name = 'purchase_intent' and split = 'test'",
    )["n"].iloc[0]
    assert cells == n_test
    imp = _df(
        con,
        "select model_name, kind, sum(importance) s, count(*) n "
        "from ml.feature_importances where kind = 'impurity' group by all",
    )
    assert np.allclose(imp["s"], 1.0)


def test_category_model_reports_its_baseline(con: duckdb.DuckDBPyConnection) -> None:
    rows = _df(
        con,
        "select class_label, metric, value, baseline_value, beats_baseline "
        "from ml.model_metrics where model_name = 'category_choice'",
    )
    overall = rows[rows["class_label"].isna()].set_index("metric")
    assert set(overall.index) == {"accuracy", "macro_f1"}
    share = _df(
        con,
        "select max(n) / sum(n) s from (select category, count(*) n "
        "from ml.order_line_predictions where split = 'test' group by category)",
    )
    assert overall.loc["accuracy", "baseline_value"] == pytest.approx(share["s"].iloc[0])
    per_class = rows[rows["class_label"].notna()]
    assert set(per_class["metric"]) == {"precision", "recall", "f1"}


def test_segments_recover_the_designed_personas(con: duckdb.DuckDBPyConnection) -> None:
    seg = _df(
        con,
        "select s.segment_name, g.persona from ml.customer_segments s "
        "join ground_truth.customer_personas g using (customer_id)",
    )
    ari = adjusted_rand_score(seg["persona"], seg["segment_name"])
    assert ari >= 0.8, ari
    majority = pd.crosstab(seg["persona"], seg["segment_name"]).idxmax(axis=1).to_dict()
    assert majority == {
        "browser": "Browsers",
        "cart_abandoner": "Cart Abandoners",
        "one_click_buyer": "One-Click Buyers",
        "explorer": "Explorers",
        "ordinary": "Regulars",
    }
    k = _df(con, "select * from ml.segment_k_selection")
    assert sorted(k["k"]) == list(range(2, 9)) and k["chosen"].sum() == 1
    assert k.loc[k["chosen"], "silhouette"].iloc[0] == k["silhouette"].max()
    prof = _df(con, "select * from ml.segment_profiles")
    assert prof["customers"].sum() == len(_df(con, "select * from ml.customer_segments"))


def test_same_data_and_seed_give_the_same_metrics(con: duckdb.DuckDBPyConnection) -> None:
    columns = reuse.early_intent_columns(con.table("ml.feature_definitions"))
    rows = build.intent_rows(
        con.table("intermediate.int_sessions_early_featurized"),
        con.table("marts.fct_sessions"),
        columns,
    )
    settings = build.Settings(seed=3, n_estimators=15, max_training_rows=2_000, n_jobs=1)
    runs = [build.intent_training(rows, columns, settings) for _ in range(2)]
    assert runs[0]["metrics"].tolist() == runs[1]["metrics"].tolist()
    assert runs[0]["pipeline_sha256"].tolist() == runs[1]["pipeline_sha256"].tolist()
    capped = runs[0].set_index("model_name")
    assert capped.loc[intent.DEPLOYED, "training_rows"] == 2_000


def test_segment_rates_in_sql_match_a_recomputation_from_sessions(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """The behaviour rates the segments read (int_customers_featurized, through
    reuse.customer_behaviour) equal the same rates recomputed here in pandas from fct_sessions."""
    sql = reuse.customer_behaviour(con.table("intermediate.int_customers_featurized")).df()
    s = _df(con, "select * from marts.fct_sessions where customer_id is not null")
    s["carted"] = s["cart_additions"] > 0
    totals = s.groupby("customer_id").agg(
        sessions=("session_id", "size"),
        views=("product_views", "sum"),
        carted=("carted", "sum"),
        abandoned=("cart_abandoned", "sum"),
        bought=("purchase_made", "sum"),
        pages=("pages_visited", "sum"),
        seconds=("session_duration_seconds", "sum"),
    )
    n = totals["sessions"].astype(float)
    expected = pd.DataFrame(
        {
            "views_per_session": totals["views"] / n,
            "cart_session_rate": totals["carted"] / n,
            "abandoned_session_rate": totals["abandoned"] / n,
            "purchase_rate": totals["bought"] / n,
            "seconds_per_page": (totals["seconds"] / totals["pages"].where(totals["pages"] > 0))
            .astype(float)
            .fillna(0.0),
            "pages_per_session": totals["pages"] / n,
            "sessions": totals["sessions"],
            "avg_session_minutes": totals["seconds"] / n / 60.0,
        }
    )
    assert list(sql["customer_id"]) == list(expected.index)  # every customer, in order, once
    assert 0 < expected["cart_session_rate"].mean() < 1
    assert (expected["abandoned_session_rate"] > 0).any()
    for column in expected.columns:
        np.testing.assert_allclose(
            sql[column].astype(float), expected[column].astype(float), rtol=1e-12, err_msg=column
        )


def test_scoring_in_batches_gives_the_same_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Sessions, order lines, customers and recommendations scored a few rows at a time (the
    last batch short) equal the same tables scored in one batch, and what the build wrote."""
    intent_training = _df(con, "select * from ml.intent_training")
    sessions = build.intent_rows(
        con.table("intermediate.int_sessions_early_featurized"),
        con.table("marts.fct_sessions"),
        reuse.early_intent_columns(con.table("ml.feature_definitions")),
    )
    lines = build.category_lines(con.table("marts.fct_order_lines"))
    customers = reuse.customer_behaviour(con.table("intermediate.int_customers_featurized"))
    pipeline, version = recommend.deployed(_df(con, "select * from ml.category_training"))
    features = con.table("intermediate.int_sessions_category_featurized")
    scorers = {
        "session_predictions": (
            lambda n: build.session_predictions(intent_training, sessions, n),
            ["model_name", "session_id"],
            997,
        ),
        "order_line_predictions": (
            lambda n: build.order_line_predictions(
                _df(con, "select * from ml.category_training"), lines, n
            ),
            ["transaction_id"],
            97,
        ),
        "customer_segments": (
            lambda n: build.customer_segments(
                _df(con, "select * from ml.segment_training"), customers, n
            ),
            ["customer_id"],
            97,
        ),
        "session_recommendations": (
            lambda n: recommend.session_recommendations(pipeline, version, features, n),
            ["session_id", "rank"],
            997,
        ),
    }
    for table, (score, order, batch_rows) in scorers.items():
        whole = score(10**9).read_pandas().sort_values(order, ignore_index=True)
        batched = score(batch_rows).read_pandas().sort_values(order, ignore_index=True)
        assert len(whole) > 3 * batch_rows, table  # several batches
        pd.testing.assert_frame_equal(batched, whole, obj=table)
        # ... and what the dbt build wrote (every row, every value).
        stored = _df(con, f"select * from ml.{table}").sort_values(order, ignore_index=True)
        pd.testing.assert_frame_equal(
            stored[list(whole.columns)], whole, check_dtype=False, obj=table
        )
