"""Live scoring: the same features and scores as the batch path, a verified model, alerts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from shoplens.config import HIGH_INTENT_TOPIC
from shoplens.ml.intent import EARLY_FEATURES
from shoplens.ml.registry import RegistryError
from shoplens.stream.scorer import SCORES_TABLE, LiveScorer
from stream_support import stream_through_hook

FEATURES = EARLY_FEATURES.columns


def test_live_path_gives_the_batch_features_and_scores(built_warehouse: Path) -> None:
    """Feed the raw rows of 400 sessions, up to just before each session's first checkout or
    purchase (what the batch features see), through the live scorer."""
    scorer = LiveScorer.from_warehouse(built_warehouse, bootstrap=None)
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        sessions = [
            r[0]
            for r in con.execute(
                "select session_id from intermediate.int_sessions_early_featurized f "
                "join ml.session_predictions p using (session_id) "
                "where p.model_name = 'purchase_intent' and f.events_so_far > 0 and session_id in "
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
            "select * from intermediate.int_sessions_early_featurized "
            "where session_id in (select session_id from picked) order by session_id"
        ).df()
        batch_scores = con.execute(
            "select session_id, probability from ml.session_predictions "
            "where model_name = 'purchase_intent' and session_id in "
            "(select session_id from picked) order by session_id"
        ).df()
    # Two arrival batches, like the sink would hand them over.
    half = raw.num_rows // 2
    scorer.stage(raw.slice(0, half))
    live = scorer.score(scorer.stage(raw.slice(half)) + sessions)
    scorer.close()
    assert len(sessions) == 400
    features = live.features.set_index("session_id").loc[sessions].sort_index()
    expected = batch.set_index("session_id").loc[sessions].sort_index()
    assert list(features.index) == list(expected.index)
    pd.testing.assert_frame_equal(
        features[FEATURES], expected[FEATURES], check_dtype=False, rtol=1e-12
    )
    scores = live.scores.to_pandas().set_index("session_id").sort_index()
    np.testing.assert_allclose(
        scores["probability"],
        batch_scores.set_index("session_id").sort_index()["probability"],
        rtol=1e-12,
    )
    assert scores["high_intent"].tolist() == (scores["probability"] >= scores["threshold"]).tolist()


def test_live_staging_is_stg_shop__events(built_warehouse: Path) -> None:
    """The scorer cleans raw rows with the SQL of stg_shop__events: given the raw rows of 300
    sessions, defective ones included, it holds exactly the events staging keeps."""
    columns = (
        "event_id, event_time, event_type, product_id, category, price, quantity, "
        "device, traffic_source, customer_id"
    )
    scorer = LiveScorer.from_warehouse(built_warehouse, bootstrap=None)
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        con.execute(
            "create temp table picked as select distinct user_session from raw.events "
            "where user_session is not null order by hash(user_session) limit 300"
        )
        raw = con.sql(
            "select * from raw.events where user_session in (select user_session from picked)"
        ).to_arrow_table()
        staged = con.execute(
            f"select user_session, {columns} from staging.stg_shop__events where user_session "
            "in (select user_session from picked) order by event_id"
        ).fetchall()
        defective = con.execute(
            "select count(*) from staging.stg_shop__events_quarantined where user_session in "
            "(select user_session from picked)"
        ).fetchone()[0]
    scorer.stage(raw)
    held = scorer.mem.execute(
        f"select session_id, {columns} from live_events order by event_id"
    ).fetchall()
    scorer.close()
    assert defective > 0  # the generator's defects reach these sessions
    assert len(staged) > 1000
    assert held == staged


def test_scorer_refuses_a_tampered_model(built_warehouse: Path, tmp_path: Path) -> None:
    db = tmp_path / "tampered.duckdb"
    shutil.copy(built_warehouse, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "update ml.model_registry set pipeline_sha256 = repeat('0', 64) "
            "where model_name = 'purchase_intent'"
        )
    with pytest.raises(RegistryError, match="sha256"):
        LiveScorer.from_warehouse(db, bootstrap=None)


@pytest.mark.kafka
def test_sink_scores_streamed_sessions_and_alerts_high_intent(
    built_warehouse: Path, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    produced, records = stream_through_hook(
        built_warehouse,
        db,
        lambda db, bootstrap: LiveScorer.from_warehouse(db, bootstrap=bootstrap),
        HIGH_INTENT_TOPIC,
    )
    alerts = [json.loads(m.value) for m in records]
    with duckdb.connect(str(db), read_only=True) as con:
        scored = con.execute(
            f"select count(*), count(distinct session_id) from {SCORES_TABLE}"
        ).fetchone()
        high = {
            r[0]
            for r in con.execute(
                f"select distinct session_id from {SCORES_TABLE} where high_intent"
            ).fetchall()
        }
        unscored_decided = con.execute(
            f"select count(*) from {SCORES_TABLE} s join raw.events e "
            "on e.user_session = s.session_id and e.event_type in ('checkout', 'purchase') "
            "and e.event_time <= s.last_event_time"
        ).fetchone()[0]
    assert produced.events == 6_000
    assert scored[1] > 0.5 * len(produced.sessions)  # most streamed sessions were scored
    assert scored[0] > scored[1]  # sessions are rescored as events arrive
    assert unscored_decided == 0  # nothing is scored once its checkout has been seen
    assert high, "a few thousand sessions should include some high-intent ones"
    assert sorted(a["session_id"] for a in alerts) == sorted(high)  # one alert per session
    assert all(a["probability"] >= a["threshold"] for a in alerts)
