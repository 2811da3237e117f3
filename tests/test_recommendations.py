"""Live personalisation: the blend, live == batch on the same sessions, the hold-out evaluation
against the baselines, the Models page verdict, and the topic/table after a streamed burst."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from shoplens.config import RECOMMENDATIONS_TOPIC
from shoplens.ml import recommend
from shoplens.ml.features import ForestParams
from shoplens.ml.registry import RegistryError
from shoplens.reports.data import ReportData
from shoplens.reports.pages import models as models_page
from shoplens.stream.recommender import RECOMMENDATIONS_TABLE, LiveRecommender
from shoplens.stream.scorer import SCORES_TABLE
from stream_support import stream_through_hook

CONTEXT = {
    "customer_id": 1,
    "last_event_time": pd.Timestamp("2026-10-01 12:00"),
    "events_so_far": 4,
    "age": 30,
    "gender": "F",
    "country": "DE",
    "transaction_hour": 12,
    "transaction_weekday": 4,
    "transaction_month": 10,
}


class FixedPipeline:
    """A stand-in category model: the same probabilities for every row; records its inputs."""

    classes_ = np.array(["A", "B", "C"])

    def __init__(self) -> None:
        self.rows_seen = 0

    def predict_proba(self, matrix: pd.DataFrame) -> np.ndarray:
        self.rows_seen += len(matrix)
        return np.tile([0.5, 0.3, 0.2], (len(matrix), 1))


def _rows(history: dict[str, list[tuple[str | None, int, int]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"session_id": s, **CONTEXT, "category": c, "views_so_far": v, "carts_so_far": k}
            for s, cats in history.items()
            for c, v, k in cats
        ]
    )


def test_recommend_blends_the_model_prior_with_the_session_history() -> None:
    pipe = FixedPipeline()
    rows = _rows(
        {
            "s1": [("B", 2, 1)],  # evidence B = 2 + 3 * 1
            "s2": [(None, 0, 0)],  # no history: the model alone
            "s3": [("D", 1, 0)],  # a category the model never saw bought
        }
    )
    recs = recommend.recommend(rows, pipe).set_index(["session_id", "rank"])
    # s1: (2 * [.5, .3, .2] + [0, 5, 0]) / 7
    assert recs.loc["s1", "category"].tolist() == ["B", "A", "C"]
    np.testing.assert_allclose(recs.loc["s1", "score"], [5.6 / 7, 1 / 7, 0.4 / 7])
    assert recs.loc[("s1", 1), "views_so_far"] == 2 and recs.loc[("s1", 1), "carts_so_far"] == 1
    np.testing.assert_allclose(recs.loc["s2", "score"], [0.5, 0.3, 0.2])
    # s3: A and D tie at 1/3; ties go by category name
    assert recs.loc["s3", "category"].tolist() == ["A", "D", "B"]
    np.testing.assert_allclose(recs.loc["s3", "score"], [1 / 3, 1 / 3, 0.6 / 3])
    assert recs.loc[("s3", 2), "model_probability"] == 0.0
    # three sessions with one context: the model is asked once
    assert pipe.rows_seen == 1


def _evaluation_data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """50 purchase sessions a day apart; before day 40 everybody buys A, from then on B, and
    those later sessions viewed B (their customers viewed A more often before)."""
    start = dt.datetime(2026, 1, 1, 10)
    sessions, lines, views = [], [], []
    for i in range(50):
        t = start + dt.timedelta(days=i)
        late = i >= 40
        sid = f"s{i:02d}"
        for cut in (recommend.LIVE_CUT, recommend.BROWSING_CUT):
            sessions.append(
                {
                    "history_cut": cut,
                    "session_id": sid,
                    **CONTEXT,
                    "customer_id": i,
                    "age": 20 + i % 30,
                    "last_event_time": t,
                    "transaction_hour": t.hour,
                    "category": "B" if late else "A",
                    "views_so_far": 2,
                    "carts_so_far": 0,
                }
            )
            views += [
                {"history_cut": cut, "session_id": sid, "category": "A", "views": 5},
                {"history_cut": cut, "session_id": sid, "category": "B", "views": 2},
            ]
        lines.append(
            {
                "transaction_id": i,
                "session_id": sid,
                "category": "B" if late else "A",
                "transaction_time": t + dt.timedelta(minutes=5),
                **{c: CONTEXT[c] for c in ("age", "gender", "country")},
                "transaction_hour": t.hour,
                "transaction_weekday": t.isoweekday(),
                "transaction_month": t.month,
            }
        )
    # order lines without a session, before the cut-off: C is bought too
    for j in range(20):
        lines.append({**lines[j], "transaction_id": 100 + j, "session_id": None, "category": "C"})
    return pd.DataFrame(sessions), pd.DataFrame(lines), pd.DataFrame(views)


def test_evaluation_holds_out_the_latest_sessions_and_learns_nothing_after_the_cutoff() -> None:
    rows, lines, views = _evaluation_data()
    out = recommend.evaluate(rows, lines, views, ForestParams(n_estimators=10), 50_000, 7)
    assert set(out["history_cut"]) == {recommend.LIVE_CUT, recommend.BROWSING_CUT}
    live = out[out["history_cut"] == recommend.LIVE_CUT].set_index(["method", "k"])
    assert (live["sessions"] == 10).all()  # 20% of 50
    assert (live["cutoff_time"] == pd.Timestamp("2026-02-10 10:00")).all()
    assert (live["training_lines"] == 60).all()  # 40 session lines + 20 C lines before it
    # A was the most popular before the cut-off; the held-out sessions buy B
    assert live.loc[("most_popular", 1), "hit_rate"] == 0.0
    assert live.loc[("most_popular", 3), "hit_rate"] == 1.0  # A, C, B
    # their customers viewed A more than B
    assert live.loc[("customer_most_viewed", 1), "hit_rate"] == 0.0
    assert live.loc[("customer_most_viewed", 3), "hit_rate"] == 1.0
    # the model only saw A and C bought: B comes third, with probability 0
    assert live.loc[("category_model", 1), "hit_rate"] == 0.0
    assert live.loc[("category_model", 3), "hit_rate"] == 1.0
    # the session's own views of B win
    assert live.loc[("recommender", 1), "hit_rate"] == 1.0
    assert live.loc[("session_history", 1), "hit_rate"] == 1.0
    assert live.loc[("recommender", 1), "best_baseline_hit_rate"] == 0.0
    assert live.loc[("recommender", 3), "best_baseline_hit_rate"] == 1.0
    assert (live["model_version"] == 7).all()
    assert live["is_baseline"].groupby("method").first().to_dict() == {
        "category_model": False,
        "customer_most_viewed": True,
        "most_popular": True,
        "recommender": False,
        "session_history": False,
    }


def test_evaluation_needs_enough_sessions() -> None:
    rows, lines, views = _evaluation_data()
    few = rows[rows["session_id"] < "s40"]
    few = few[few["session_id"].isin([f"s{i:02d}" for i in range(30, 40)])]
    out = recommend.evaluate(few, lines, views, ForestParams(n_estimators=10), 50_000, 1)
    assert out.empty and list(out.columns) == list(recommend.EVALUATION_COLUMNS)


def _page_data(tmp_path: Path, recommender_hit: float) -> ReportData:
    con = duckdb.connect(":memory:")
    con.execute("create schema ml")
    rates = {
        "most_popular": (0.2, 0.5),
        "customer_most_viewed": (0.4, 0.7),
        "category_model": (0.2, 0.5),
        "session_history": (recommender_hit, 0.7),
        "recommender": (recommender_hit, 0.7),
    }
    frame = pd.DataFrame(
        [
            {
                "history_cut": "browsing",
                "method": m,
                "description": recommend.METHODS[m],
                "is_baseline": m in recommend.BASELINES,
                "k": k,
                "hit_rate": r[i],
                "sessions": 120,
            }
            for m, r in rates.items()
            for i, k in enumerate((1, 3))
        ]
    )
    con.register("f", frame)
    con.execute("create table ml.recommendation_evaluation as select * from f")
    return ReportData(con, tmp_path / "w.duckdb")


def test_models_page_says_when_session_history_adds_nothing(tmp_path: Path) -> None:
    nothing = models_page.recommendation_verdict(_page_data(tmp_path, 0.4))
    assert "adds NOTHING over the best baseline" in nothing.items[0]
    assert "+0.0 points at hit@1 (40.0% vs 40.0%)" in nothing.items[0]
    assert "120 held-out sessions" in nothing.items[0]
    assert "the category model adds nothing over session history" in nothing.items[1]
    better = models_page.recommendation_verdict(_page_data(tmp_path, 0.55))
    assert "NOTHING" not in better.items[0]
    assert "+15.0 points at hit@1 (55.0% vs 40.0%)" in better.items[0]


# --- on a built warehouse -------------------------------------------------------------------


def test_stored_feature_sql_is_the_batch_model(built_warehouse: Path) -> None:
    """ml.feature_definitions' session_category SQL over the sessionised events gives exactly
    int_sessions_category_featurized's live cut."""
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        sql = recommend.feature_sql(
            con, "intermediate.int_events_sessionized", "staging.stg_shop__customers"
        )
        order = "order by session_id, category nulls first"
        live = con.execute(f"select * from ({sql}) as f {order}").df()
        batch = con.execute(
            "select * exclude (history_cut, sessionization_key, max_loaded_at, built_at) "
            "from intermediate.int_sessions_category_featurized "
            f"where history_cut = 'before_checkout' {order}"
        ).df()
    assert len(batch) > 5_000
    pd.testing.assert_frame_equal(live, batch)


def test_live_recommendations_equal_the_batch_ones(built_warehouse: Path) -> None:
    """The raw rows of 400 sessions, up to just before each session's first checkout or
    purchase, fed through the live scorer and recommender in two arrival batches."""
    hook = LiveRecommender.from_warehouse(built_warehouse, bootstrap=None)
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        sessions = [
            r[0]
            for r in con.execute(
                "select distinct session_id from ml.session_recommendations where session_id in "
                "(select session_id from intermediate.int_events_sessionized "
                " where session_source = 'user_session') "
                "order by hash(session_id) limit 400"
            ).fetchall()
        ]
        con.execute("create temp table picked (session_id varchar)")
        con.executemany("insert into picked values (?)", [[s] for s in sessions])
        raw = con.sql(
            "with intent as (select session_id, min(event_time) as intent_time "
            "  from intermediate.int_events_sessionized "
            "  where event_type in ('checkout', 'purchase') group by session_id) "
            "select r.* exclude (source, loaded_at) from raw.events r "
            "join picked p on p.session_id = r.user_session "
            "left join intent i on i.session_id = r.user_session "
            "where i.intent_time is null or r.event_time < i.intent_time "
            "order by r.loaded_at, r.event_id"
        ).to_arrow_table()
        batch = con.execute(
            "select * from ml.session_recommendations where session_id in "
            "(select session_id from picked) order by session_id, rank"
        ).df()
    half = raw.num_rows // 2
    hook.scorer.stage(raw.slice(0, half))
    hook.scorer.score(hook.scorer.stage(raw.slice(half)) + sessions)
    live = hook.recommend(sessions)
    hook.close()
    assert len(sessions) == 400
    assert len(live) == len(batch) == 3 * 400
    keys = ["session_id", "rank"]
    live = live.sort_values(keys).reset_index(drop=True)
    exact = [
        "session_id",
        "customer_id",
        "rank",
        "category",
        "views_so_far",
        "carts_so_far",
        "events_so_far",
        "last_event_time",
    ]
    pd.testing.assert_frame_equal(live[exact], batch[exact], check_dtype=False)
    for column in ("score", "model_probability"):
        np.testing.assert_allclose(live[column], batch[column], rtol=1e-12, atol=1e-15)
    # history mattered in these sessions, and the model ranked the rest
    assert (live["views_so_far"] > 0).mean() > 0.2
    assert (live["model_probability"] > 0).mean() > 0.5


def test_recommendation_evaluation_in_the_warehouse(built_warehouse: Path) -> None:
    """Every method at both cuts; the most-popular baseline recomputed from the order lines
    before the cut-off; hit@3 >= hit@1; the best baseline beside each row."""
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        ev = con.execute("select * from ml.recommendation_evaluation").df()
        expected = {}
        for cut, cutoff in ev.groupby("history_cut")["cutoff_time"].first().items():
            popular = con.execute(
                "select category from marts.fct_order_lines where transaction_time < ? "
                "and category is not null group by category order by count(*) desc, category "
                "limit 1",
                [cutoff],
            ).fetchone()[0]
            expected[cut] = con.execute(
                "with held_out as (select distinct session_id from "
                "intermediate.int_sessions_category_featurized f where history_cut = ? "
                "and last_event_time >= ? and session_id in "
                "(select session_id from marts.fct_order_lines)) "
                "select count(*) filter (where session_id in (select session_id from "
                "marts.fct_order_lines where category = ?)), count(*) from held_out",
                [cut, cutoff, popular],
            ).fetchone()
    assert set(ev["history_cut"]) == {"before_checkout", "browsing"}
    assert len(ev) == 2 * len(recommend.METHODS) * 2
    for cut, (hits, sessions) in expected.items():
        rows = ev[ev["history_cut"] == cut].set_index(["method", "k"])
        assert rows.loc[("most_popular", 1), "sessions"] == sessions
        assert rows.loc[("most_popular", 1), "hits"] == hits
        for method in recommend.METHODS:
            assert rows.loc[(method, 3), "hit_rate"] >= rows.loc[(method, 1), "hit_rate"]
        for k in (1, 3):
            best = max(rows.loc[(m, k), "hit_rate"] for m in recommend.BASELINES)
            assert (rows.xs(k, level="k")["best_baseline_hit_rate"] == best).all()
    assert (ev["training_lines"] > 100).all()


def test_recommender_refuses_a_tampered_category_model(
    built_warehouse: Path, tmp_path: Path
) -> None:
    db = tmp_path / "tampered.duckdb"
    shutil.copy(built_warehouse, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "update ml.model_registry set pipeline_sha256 = repeat('0', 64) "
            "where model_name = 'category_choice'"
        )
    with pytest.raises(RegistryError, match="sha256"):
        LiveRecommender.from_warehouse(db, bootstrap=None)


@pytest.mark.kafka
def test_streamed_sessions_get_recommendations_on_the_topic_and_in_the_table(
    built_warehouse: Path, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    produced, records = stream_through_hook(
        built_warehouse,
        db,
        lambda db, bootstrap: LiveRecommender.from_warehouse(db, bootstrap=bootstrap),
        RECOMMENDATIONS_TOPIC,
    )
    messages = [(m.key.decode(), json.loads(m.value)) for m in records]
    with duckdb.connect(str(db), read_only=True) as con:
        recs = con.execute(f"select * from {RECOMMENDATIONS_TABLE}").df()
        per_score = con.execute(
            f"select count(r.rank) as n from {SCORES_TABLE} s left join {RECOMMENDATIONS_TABLE} r "
            "on r.session_id = s.session_id and r.recommended_at = s.scored_at "
            "group by s.session_id, s.scored_at"
        ).df()
        registered = con.execute(
            "select max(version) from ml.model_registry where model_name = 'category_choice'"
        ).fetchone()[0]
    assert produced.events == 6_000
    # every scoring of a session came with its top 3, and nothing else was recommended
    assert len(per_score) > 0 and (per_score["n"] == 3).all()
    assert len(recs) == 3 * len(per_score)
    assert recs["session_id"].nunique() > 0.5 * len(produced.sessions)
    assert (recs["model_version"] == registered).all()
    assert set(recs["session_id"]) <= set(produced.sessions)
    # published: each session's first recommendation and every change of its top categories
    tops = (
        recs.sort_values(["session_id", "recommended_at", "rank"])
        .groupby(["session_id", "recommended_at"], sort=True)["category"]
        .agg(tuple)
        .reset_index()
    )
    changes = tops[tops["category"] != tops.groupby("session_id")["category"].shift()].reset_index(
        drop=True
    )
    published = pd.DataFrame(
        [
            {
                "session_id": m["session_id"],
                "recommended_at": pd.Timestamp(m["recommended_at"]),
                "category": tuple(c["category"] for c in m["categories"]),
            }
            for _, m in messages
        ]
    ).sort_values(["session_id", "recommended_at"], ignore_index=True)
    assert all(key == m["session_id"] for key, m in messages)
    assert len(published) == len(changes)
    pd.testing.assert_frame_equal(published, changes, check_dtype=False)
    first = messages[0][1]
    assert first["model_name"] == "category_choice" and len(first["categories"]) == 3
    assert first["categories"][0]["score"] >= first["categories"][1]["score"]


def test_session_recommendations_follow_rebuilt_features(
    built_warehouse: Path, tmp_path: Path, dbt
) -> None:
    """The incremental path: sessions whose feature rows were rebuilt get new recommendations,
    the others keep theirs, and the table equals a recomputation from all features."""
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, db)
    order = "order by session_id, rank"
    with duckdb.connect(str(db)) as con:
        before = con.execute(f"select * from ml.session_recommendations {order}").df()
        keys = [
            r[0]
            for r in con.execute(
                "select distinct sessionization_key "
                "from intermediate.int_sessions_category_featurized "
                "where category is not null order by hash(sessionization_key) limit 5"
            ).fetchall()
        ]
        con.execute(
            "update intermediate.int_sessions_category_featurized "
            "set views_so_far = views_so_far + 50, built_at = now()::timestamp "
            f"where category is not null and sessionization_key in ({', '.join('?' * len(keys))})",
            keys,
        )
    dbt(["build", "-s", "session_recommendations"], db, tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        after = con.execute(f"select * from ml.session_recommendations {order}").df()
        pipeline, version = recommend.deployed(
            con.execute("select * from ml.category_training").df()
        )
        features = con.table("intermediate.int_sessions_category_featurized")
        expected = recommend.session_recommendations(pipeline, version, features).read_pandas()
    expected = expected.sort_values(["session_id", "rank"], ignore_index=True)
    touched = after["sessionization_key"].isin(keys)
    assert touched.sum() >= 15
    # each key's session with history now leads with the category viewed 50 more times
    assert (after.loc[touched & (after["rank"] == 1), "views_so_far"] >= 50).sum() >= 5
    pd.testing.assert_frame_equal(
        after[~touched].reset_index(drop=True),
        before[~before["sessionization_key"].isin(keys)].reset_index(drop=True),
    )
    exact = ["session_id", "rank", "category", "views_so_far", "carts_so_far", "model_version"]
    pd.testing.assert_frame_equal(after[exact], expected[exact], check_dtype=False)
    np.testing.assert_allclose(after["score"], expected["score"], rtol=1e-12)
