"""A burst of sessions loaded today (as `make demo` streams after generating the year up to
yesterday) leaves the Overview's period comparison and the hour x weekday heatmap as the
generated history alone gives them: both count only days and weeks that are over."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pytest

from dbt_support import SQL_ONLY
from shoplens.generate import build_world, generate_and_load
from shoplens.generate.world import HOUR_CURVE
from shoplens.reports.data import open_report_data
from shoplens.reports.pages import overview
from shoplens.stream.producer import replay_stream
from shoplens.stream.replay import Replay, window_weight


def _overview_numbers(db: Path) -> tuple[list, list, list]:
    """KPI tiles (value, previous), the daily trend's sessions, and the heatmap's rows."""
    with open_report_data(db) as data:
        tiles = [(t.key, t.value, t.previous) for t in overview.kpi_tiles(data).tiles]
        trend = list(overview.daily_trend(data).figure.data[0].y)
    with duckdb.connect(str(db), read_only=True) as con:
        heatmap = con.execute(
            "select * from marts.mart_activity_hour_weekday order by start_weekday, start_hour"
        ).fetchall()
    return tiles, trend, heatmap


def same(a: object, b: object) -> bool:
    """Equal, floats within 1e-9 relative (nested lists and tuples compared item by item)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_todays_burst_leaves_period_comparison_and_heatmap_alone(dbt, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    history = tmp_path / "history" / "warehouse.duckdb"
    history.parent.mkdir()
    generate_and_load(
        history,
        sessions=2_500,
        seed=11,
        days=70,
        end=today - dt.timedelta(days=1),
        defect_rate=0.0,
        progress=False,
    )
    dbt(["build", *SQL_ONLY], history, history.parent)  # seeds too
    before = _overview_numbers(history)

    burst = tmp_path / "burst" / "warehouse.duckdb"
    burst.parent.mkdir()
    shutil.copy(history, burst)
    # 1,000 more sessions today: about 28 days of this shop's traffic in one day
    generate_and_load(
        burst, sessions=1_000, seed=12, days=1, end=today, defect_rate=0.0, progress=False
    )
    dbt(["build", "--selector", "after_burst"], burst, burst.parent)
    with duckdb.connect(str(burst), read_only=True) as con:
        todays = con.execute(
            "select count(*) from marts.fct_sessions where session_date = ?", [today]
        ).fetchone()[0]
    if dt.datetime.now(dt.UTC).date() != today:  # midnight passed: today is over now
        return
    assert todays >= 900
    after = _overview_numbers(burst)
    # Equal up to float rounding: DuckDB's parallel aggregates sum floats in whatever order its
    # threads finish, so averages can differ in the last bits between two builds.
    assert same(after[0], before[0])  # every KPI and its previous-period value
    assert same(after[1], before[1])  # the daily trend
    assert same(after[2], before[2])  # every heatmap cell
    assert before[2]  # the history spans complete weeks


# ---------------------------------------------------------------- simulated timestamps (make demo)


def _session_starts(events: list[dict]) -> dict[str, dt.datetime]:
    starts: dict[str, dt.datetime] = {}
    for event in events:
        starts.setdefault(event["user_session"], event["event_time"])
    return starts


def test_a_replayed_burst_follows_the_shops_time_of_day_curve() -> None:
    world = build_world(1, 500, 200)
    start = dt.datetime(2026, 10, 1, 23, 50)
    until = dt.datetime(2026, 11, 30, 9)
    day = dt.datetime(2026, 10, 5)
    # 200 sessions a day at the curve level of 2026-10-05
    replay = Replay(start, 200 / window_weight(day, day + dt.timedelta(days=1)), until)
    events = [e for e, _ in replay_stream(world, 30_000, replay, seed=1, id_prefix="t-")]
    starts = _session_starts(events)
    assert len(events) == 30_000
    assert min(starts.values()) >= start
    hours = np.bincount([t.hour for t in starts.values()], minlength=24) / len(starts)
    world_share = HOUR_CURVE / HOUR_CURVE.sum()
    # the busiest hour is the world's (20:00 UTC) and holds about its share
    assert hours.argmax() == world_share.argmax()
    assert abs(hours.max() / world_share.max() - 1) < 0.15
    assert 0.5 * np.abs(hours - world_share).sum() < 0.08  # total variation distance
    # whole days hold the history's pace, not a burst's
    days = Counter(t.date() for t in starts.values())
    full = [d for d in days if start.date() < d < max(days)]
    assert len(full) >= 10
    expected = [replay.sessions_per_day(d) for d in full]
    assert abs(sum(days[d] for d in full) / sum(expected) - 1) < 0.1


def test_a_replay_stops_at_the_present() -> None:
    world = build_world(2, 300, 100)
    start = dt.datetime(2026, 11, 1)
    until = start + dt.timedelta(days=2)
    replay = Replay(start, 5.0, until)
    events = [e for e, _ in replay_stream(world, 100_000, replay, seed=2, id_prefix="u-")]
    starts = _session_starts(events)
    assert max(starts.values()) < until
    expected = 5.0 * window_weight(start, until)
    assert abs(len(starts) / expected - 1) < 0.05
    assert replay.advance(until, 10) == (until, 0)


@pytest.mark.kafka
def test_a_simulated_stream_keeps_the_heatmap_and_period_comparison(dbt, tmp_path: Path) -> None:
    """History up to a week ago, then a stream on the simulated clock up to now (what `make
    demo` does): the busiest hour x weekday cell and the Overview's period comparison stay
    within 10% of what the history alone gives."""
    from shoplens.stream.run import stream

    today = dt.datetime.now(dt.UTC).date()
    history = tmp_path / "history" / "warehouse.duckdb"
    history.parent.mkdir()
    generate_and_load(
        history,
        sessions=20_000,
        seed=21,
        days=240,
        end=today - dt.timedelta(days=7),
        defect_rate=0.0,
        progress=False,
    )
    dbt(["build", *SQL_ONLY], history, history.parent)  # seeds too
    before = _overview_numbers(history)

    streamed = tmp_path / "streamed" / "warehouse.duckdb"
    streamed.parent.mkdir()
    shutil.copy(history, streamed)
    run = stream(
        streamed,
        None,
        rate=20_000,
        duration=2,
        seed=5,
        defect_rate=0.0,
        with_sink=True,
        score=False,
        report=lambda line: None,
        timestamps="simulated",
    )
    assert run.produced.events < 40_000  # it caught up with the present and stopped
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert run.produced.last_event_time is not None
    assert now - dt.timedelta(hours=3) < run.produced.last_event_time <= now
    dbt(["build", "--selector", "after_burst"], streamed, streamed.parent)
    with duckdb.connect(str(streamed), read_only=True) as con:
        streamed_days = con.execute(
            "select session_date, count(*) from marts.fct_sessions "
            "where session_id in (select user_session from raw.events where source = 'kafka') "
            "group by all order by 1"
        ).fetchall()
    assert [d for d, _ in streamed_days][1:-1] == [
        today - dt.timedelta(days=n) for n in range(6, 0, -1)
    ]
    after = _overview_numbers(streamed)

    def busiest(rows: list) -> int:
        return max(row[2] for row in rows)  # start_weekday, start_hour, sessions, ...

    assert abs(busiest(after[2]) / busiest(before[2]) - 1) < 0.1
    tiles_before = {key: (value, previous) for key, value, previous in before[0]}
    tiles_after = {key: (value, previous) for key, value, previous in after[0]}
    for key in ("sessions", "conversion_rate", "cart_abandonment"):
        for now_value, then_value in zip(tiles_after[key], tiles_before[key], strict=True):
            assert abs(now_value / then_value - 1) < 0.1, key
    change_before = tiles_before["sessions"][0] / tiles_before["sessions"][1]
    change_after = tiles_after["sessions"][0] / tiles_after["sessions"][1]
    assert abs(change_after - change_before) < 0.1
