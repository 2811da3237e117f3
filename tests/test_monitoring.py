"""Monitoring the live intent model (models/marts/monitoring) on streamed sessions.

A copy of the built test warehouse (history up to SMALL_END, models trained on it) receives a
week of new sessions the way the sink and the live scorer handle them: in micro-batches, each
scored by the live scorer and written with its rows. Then the after-burst refresh
builds the marts (the models are not retrained: the deployed one is monitored). In one copy
the world shifts on the first new day (most sessions from social media, prices x 1.5); in the
other it does not. Drift must be reported on the first and not on the second, and the daily
metrics must equal scikit-learn's on the same sessions.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from shoplens import warehouse
from shoplens.generate import WorldShift, load_world, simulate_sessions
from shoplens.reports.content import Chart, Notice
from shoplens.reports.data import open_report_data
from shoplens.reports.pages import monitoring
from shoplens.stream.scorer import LiveScorer

# The day after the test warehouse's history ends (conftest.SMALL_END, 2026-10-31).
START = dt.datetime(2026, 11, 1)
END = START + dt.timedelta(days=7)
NEW_SESSIONS = 1_500
BATCH_ROWS = 250
PSI_TEST = "expression_is_true_mon_feature_drift_psi"


def _plain(table: pa.Table) -> pa.Table:
    """The table with dictionary columns decoded (as the sink's batches are)."""
    return pa.table(
        {
            name: column.cast(column.type.value_type)
            if pa.types.is_dictionary(column.type)
            else column
            for name, column in zip(table.column_names, table.columns, strict=True)
        }
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _stream_week(db: Path, shift: WorldShift | None) -> None:
    """A week of new sessions into `db`, scored live batch by batch as they land."""
    with warehouse.connect(db, read_only=True) as con:
        world = load_world(con)
    events, transactions = simulate_sessions(
        world, NEW_SESSIONS, START, END, seed=11, id_prefix="k1-", source="kafka", shift=shift
    )
    events = _plain(events)
    # Events seconds apart reach the sink in different micro-batches: every session's events
    # before its first checkout or purchase arrive (in arrival order) before that event does,
    # so each session is scored on what it did up to its decision, as it would be live.
    frame = events.to_pandas()
    decided = (
        frame[frame["event_type"].isin(["checkout", "purchase"])]
        .groupby("user_session")["event_time"]
        .min()
    )
    intent = frame["user_session"].map(decided)
    before = (intent.isna() | (frame["event_time"] < intent)).to_numpy()
    ordered = pa.concat_tables([events.filter(before), events.filter(~before)])
    scorer = LiveScorer.from_warehouse(db, bootstrap=None)
    try:
        with warehouse.connect(db) as con:
            for offset in range(0, ordered.num_rows, BATCH_ROWS):
                batch = ordered.slice(offset, BATCH_ROWS)
                prepared = scorer.prepare({"raw.events": batch})
                con.execute("begin")
                warehouse.append(con, "raw.events", batch, loaded_at=_now())
                scorer.write(con, prepared)
                con.execute("commit")
            warehouse.append(con, "raw.transactions", _plain(transactions), loaded_at=_now())
    finally:
        scorer.close()


def _monitored(built: Path, work: Path, dbt, shift: WorldShift | None) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    db = work / "warehouse.duckdb"
    shutil.copy(built, db)
    _stream_week(db, shift)
    dbt(["build", "--selector", "after_burst"], db, work)
    return db


@pytest.fixture(scope="module")
def steady(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, dbt) -> Path:
    return _monitored(built_warehouse, tmp_path_factory.mktemp("steady"), dbt, None)


@pytest.fixture(scope="module")
def shifted(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory, dbt) -> Path:
    shift = WorldShift(START, traffic_source="social", traffic_share=0.6, price_factor=1.5)
    return _monitored(built_warehouse, tmp_path_factory.mktemp("shifted"), dbt, shift)


def _frame(db: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).df()


def _psi_test_status(db: Path) -> str:
    """Status of the PSI test in the latest dbt invocation recorded in the warehouse."""
    frame = _frame(
        db,
        "select status from ops.dbt_node_results where node_name like ? "
        "order by completed_at desc limit 1",
        [f"{PSI_TEST}%"],
    )
    return str(frame["status"].iloc[0])


def test_live_outcomes_are_the_scored_sessions_that_ended(steady: Path) -> None:
    outcomes = _frame(steady, "select * from marts.mon_live_outcomes")
    scored = _frame(steady, "select distinct session_id from live.session_scores")
    assert 0.8 * len(scored) <= len(outcomes) <= len(scored)
    assert outcomes["session_id"].str.startswith("k1-").all()
    assert outcomes["purchase_made"].sum() > 20
    assert (outcomes["session_date"] >= pd.Timestamp(START)).all()
    # the last scoring of each session
    last = _frame(
        steady,
        "select session_id, arg_max(probability, scored_at) as last_probability "
        "from live.session_scores group by session_id",
    ).set_index("session_id")
    merged = outcomes.set_index("session_id").join(last)
    np.testing.assert_allclose(merged["probability"], merged["last_probability"])


def test_daily_metrics_equal_scikit_learn(steady: Path) -> None:
    outcomes = _frame(steady, "select * from marts.mon_live_outcomes")
    daily = _frame(steady, "select * from marts.mon_intent_daily order by session_date")
    assert len(daily) >= 7
    for row in daily.itertuples():
        day = outcomes[outcomes["session_date"] == row.session_date]
        y, p = day["outcome"].to_numpy(), day["probability"].to_numpy()
        assert row.scored_sessions == len(day) and row.purchases == y.sum()
        assert row.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert row.pr_auc == pytest.approx(average_precision_score(y, p), abs=1e-12)
        assert row.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
        flagged = p >= day["threshold"].to_numpy()
        assert row.recall_at_threshold == pytest.approx((flagged & (y == 1)).sum() / y.sum())
        assert row.share_above_threshold == pytest.approx(flagged.mean())
    # the deployed model still ranks buyers above the others on an unchanged world
    assert daily["roc_auc"].mean() > 0.6


def test_drift_is_reported_on_a_shifted_world(shifted: Path) -> None:
    drift = _frame(shifted, "select * from marts.mon_feature_drift").set_index("feature")
    assert drift.loc["traffic_source", "drifted"]
    assert drift.loc["traffic_source", "most_shifted_bin"] == "social"
    assert drift.loc["mean_price_viewed_so_far", "psi"] > 0.25
    assert not drift.loc["device", "drifted"]
    assert _psi_test_status(shifted) == "warn"


def test_no_drift_on_an_unchanged_world(steady: Path) -> None:
    drift = _frame(steady, "select feature, psi, drifted from marts.mon_feature_drift")
    assert len(drift) == 18
    assert not drift["drifted"].any(), drift.sort_values("psi").tail(3)
    assert drift["psi"].max() < 0.25
    assert _psi_test_status(steady) == "pass"


def test_monitoring_page_draws_the_series_and_names_the_drift(shifted: Path) -> None:
    with open_report_data(shifted) as data:
        page = monitoring.build(data)
    titles = [s.title for s in page.sections]
    assert titles[:3] == [
        "Live model quality per day",
        "Reliability of the live scores",
        "Feature drift",
    ]
    assert titles[3].startswith("The most shifted feature: ")
    assert all(isinstance(s, Chart) for s in page.sections)
    verdict = page.sections[2].note.split("Above the limit: ")[1]
    assert "traffic_source" in verdict and "device" not in verdict
    daily = page.sections[0].figure
    assert {t.name for t in daily.data} >= {"ROC AUC", "PR AUC", "Brier score"}


def test_monitoring_page_without_live_scores_says_so(built_warehouse: Path) -> None:
    with open_report_data(built_warehouse) as data:
        page = monitoring.build(data)
    first = page.sections[0]
    assert isinstance(first, Notice) and "nothing scored live has ended yet" in first.message
