"""A burst of sessions loaded today (as `make demo` streams after generating the year up to
yesterday) leaves the Overview's period comparison and the hour x weekday heatmap as the
generated history alone gives them: both count only days and weeks that are over."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb

from shoplens.generate import generate_and_load
from shoplens.reports.data import open_report_data
from shoplens.reports.pages import overview


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


def test_todays_burst_leaves_period_comparison_and_heatmap_alone(dbt, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    history = tmp_path / "history" / "shop.duckdb"
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
    dbt(["seed"], history, history.parent)
    dbt(["build", "--exclude", "path:models/ml"], history, history.parent)
    before = _overview_numbers(history)

    burst = tmp_path / "burst" / "shop.duckdb"
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
    assert after[0] == before[0]  # every KPI and its previous-period value
    assert after[1] == before[1]  # the daily trend
    assert after[2] == before[2]  # every heatmap cell
    assert before[2]  # the history spans complete weeks
