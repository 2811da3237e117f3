"""The numbers the pages show: minimum support, Wilson intervals, impact ranking, small groups.

Hand-made marts pin the rules; the REES46 sample (3,000 real events, built with dbt) pins the
case that once produced "Other (2 of 2 carts abandoned)".
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest

from shoplens.reports.content import Bullets
from shoplens.reports.data import open_report_data
from shoplens.reports.pages import overview
from shoplens.reports.stats import MIN_SUPPORT, rate_with_interval, wilson


def test_wilson_interval_values() -> None:
    lo, hi = wilson(2, 2)
    assert lo == pytest.approx(0.3424, abs=1e-4)
    assert hi == 1.0
    lo, hi = wilson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(50, 100)
    assert (lo, hi) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    assert rate_with_interval(50, 100) == "50% (95% CI 40–60%)"


def _funnel_warehouse(path: Path, rows: list[tuple]) -> Path:
    """A warehouse holding only marts.mart_funnel_daily with the given
    (category, viewing, carts, abandoned, buying, revenue) rows, all on one day."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.mart_funnel_daily (activity_date date, category varchar, "
            "viewing_sessions bigint, cart_sessions bigint, abandoned_cart_sessions bigint, "
            "purchase_sessions bigint, revenue double)"
        )
        con.executemany(
            "insert into marts.mart_funnel_daily values ('2026-10-31', ?, ?, ?, ?, ?, ?)", rows
        )
    return path


def test_recommendations_rank_by_lost_revenue_and_skip_tiny_groups(tmp_path: Path) -> None:
    db = _funnel_warehouse(
        tmp_path / "funnel.duckdb",
        [
            # many lost carts of cheap goods
            ("Grocery", 400, 100, 60, 40, 400.0),
            # fewer lost carts, expensive goods: the most revenue lost
            ("Electronics", 400, 50, 30, 20, 10_000.0),
            # 2 of 2 carts abandoned: below the minimum support
            ("Other", 5, 2, 2, 0, 0.0),
        ],
    )
    with open_report_data(db) as data:
        section = overview.recommendations(data)
    assert isinstance(section, Bullets)
    text = "\n".join(section.items)
    assert section.items[0].startswith(
        "Most revenue is lost in abandoned carts in Electronics (about $15,000 from 30 of 50 "
        "carts abandoned), Grocery (about $600 from 60 of 100 carts abandoned):"
    )
    assert "Other" not in text
    assert "2 of 2" not in text
    assert f"fewer than {MIN_SUPPORT} sessions with a cart: Other" in section.note
    # both supported rates are 60% (a tie goes to the first by name): the intervals overlap
    assert (
        "Electronics has the highest abandonment rate, 60% (95% CI 46–72%) of 50 carts, against "
        "60% (95% CI 50–69%) in the other categories, but the intervals overlap"
    ) in text
    # view-to-cart: Grocery 25% of 400, Electronics 12.5% of 400: intervals apart
    assert (
        "Viewers add to cart least in Electronics, 12.5% (95% CI 9.6–16.1%) of 400 viewing "
        "sessions, and most in Grocery, 25.0% (95% CI 21.0–29.5%) of 400: improve product pages"
    ) in text


def test_recommendations_say_so_when_nothing_has_support(tmp_path: Path) -> None:
    db = _funnel_warehouse(tmp_path / "tiny.duckdb", [("Other", 5, 2, 2, 0, 0.0)])
    with open_report_data(db) as data:
        section = overview.recommendations(data)
    assert section.kind == "notice"
    assert f"no category had {MIN_SUPPORT} or more viewing sessions" in section.message


def test_rees46_sample_recommends_nothing_from_two_carts(rees46_warehouse: Path) -> None:
    with duckdb.connect(str(rees46_warehouse), read_only=True) as con:
        other = con.execute(
            "select sum(cart_sessions), sum(abandoned_cart_sessions) "
            "from marts.mart_funnel_daily where category = 'Other'"
        ).fetchone()
    assert other == (2, 2)  # the case: 2 of 2 carts abandoned
    with open_report_data(rees46_warehouse) as data:
        section = overview.recommendations(data)
    assert isinstance(section, Bullets)
    text = "\n".join(section.items)
    assert "2 of 2" not in text and "100% of 2" not in text
    assert "abandoned carts" not in text  # no category has MIN_SUPPORT carts
    assert "abandonment not compared" in section.note and "Other" in section.note
    assert text.startswith("Viewers add to cart least in Fashion, 0.0% (95% CI 0.0–7.3%) of 49")
    assert "the intervals overlap, so no category stands out yet" in text


def _section(page, title: str):
    return next(s for s in page.sections if s.title == title)


def test_funnel_counts_each_session_once(built_warehouse: Path) -> None:
    from shoplens.reports.pages import behaviour

    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        expected = con.execute(
            "select count(*) filter (where product_views > 0 or cart_additions > 0 "
            "or checkout_reached or purchase_made), "
            "count(*) filter (where cart_additions > 0 or checkout_reached or purchase_made), "
            "count(*) filter (where checkout_reached or purchase_made), "
            "count(*) filter (where purchase_made) from marts.fct_sessions"
        ).fetchone()
        sessions, pairs = con.execute(
            "select count(*), (select sum(viewing_sessions) from marts.mart_funnel_daily) "
            "from marts.fct_sessions"
        ).fetchone()
    assert pairs > sessions  # the category breakdown counts a session once per category
    with open_report_data(built_warehouse) as data:
        page = behaviour.build(data)
    funnel = _section(page, "Funnel").figure.data[0]
    assert [int(v) for v in funnel.x] == list(expected)
    assert expected[0] <= sessions
    assert all(a >= b for a, b in pairwise(expected))
    assert (
        funnel.text[1]
        == f"{expected[1]:,} sessions<br>{expected[1] / expected[0]:.1%} of the step before"
    )
    by_category = _section(page, "Funnel by category")
    assert by_category.kind == "chart"
    assert "counts in each" in by_category.note


def _marts(path: Path, *statements: str) -> Path:
    """A warehouse with a marts schema and the given statements run."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        for sql in statements:
            con.execute(sql)
    return path


def test_monthly_chart_marks_partial_months(tmp_path: Path) -> None:
    from shoplens.reports.pages import sales

    db = _marts(
        tmp_path / "monthly.duckdb",
        "create table marts.mart_sales_monthly as select * from (values "
        "(date '2026-01-01', 5.0, 1, null, true, 1, 31), "
        "(date '2026-02-01', 100.0, 2, 1.0, false, 28, 28), "
        "(date '2026-03-01', 50.0, 1, null, true, 15, 31)) "
        "t(sales_month, revenue, orders, seasonality_index, is_partial_month, days_covered, "
        "days_in_month)",
    )
    with open_report_data(db) as data:
        chart = sales.monthly(data)
    bars = chart.figure.data[0]
    assert list(bars.marker.pattern.shape) == ["/", "", "/"]
    assert list(bars.marker.color) == [sales.PARTIAL_GREY, "#2f6fb0", sales.PARTIAL_GREY]
    assert list(bars.customdata) == [
        "partial month: 1 of 31 days, no index",
        "index 1.00",
        "partial month: 15 of 31 days, no index",
    ]
    assert "Jan 2026 (1 of 31 days), Mar 2026 (15 of 31 days)." in chart.note


def test_small_demographic_groups_are_greyed_or_left_out(tmp_path: Path) -> None:
    from shoplens.reports.pages import sales
    from shoplens.reports.stats import MIN_GROUP_SIZE

    db = _marts(
        tmp_path / "demo.duckdb",
        "create table marts.mart_age_distribution as select * from (values "
        "('25-34', 1), ('65+', 2)) t(age_band, band_order)",
        "create table marts.mart_demographic_category as select * from (values "
        "('25-34', 'F', 'Books', 30), ('25-34', 'M', 'Toys', 40), "
        "('65+', 'F', 'Books', 2), ('65+', 'X', 'Toys', 3)) "
        "t(age_band, gender, category, order_lines)",
    )
    with open_report_data(db) as data:
        heatmap = sales.demographic(data)
        genders = sales.gender_category(data)
    coloured, grey = heatmap.figure.data
    # the 65+ band (5 lines) has no colour share, only the grey layer
    assert list(coloured.z[0]) == [pytest.approx(30 / 70), pytest.approx(40 / 70)]
    assert all(v != v for v in coloured.z[1])  # NaN: not drawn
    assert [list(r) for r in grey.z] == [[None, None], [1, 1]]
    assert f"fewer than {MIN_GROUP_SIZE} order lines, too few for shares: 65+ (5)." in (
        heatmap.note
    )
    # gender X (3 lines) is left out; F (32) and M (40) stay
    assert sorted(t.name for t in genders.figure.data) == ["F", "M"]
    assert "Left out: groups with fewer than 30 order lines, too few for shares: X (3)." in (
        genders.note
    )


def test_periods_leave_out_the_day_under_way() -> None:
    history_end = dt.datetime(2026, 10, 31, 22, 47)
    previous, current, end = overview.periods(history_end, today=dt.date(2026, 11, 30))
    assert (previous, current, end) == (
        dt.datetime(2026, 9, 2),
        dt.datetime(2026, 10, 2),
        dt.datetime(2026, 11, 1),
    )
    # data up to this morning (a streamed burst): today is not over, the period ends yesterday
    _, current, end = overview.periods(dt.datetime(2026, 11, 30, 9, 5), today=dt.date(2026, 11, 30))
    assert (current, end) == (dt.datetime(2026, 10, 31), dt.datetime(2026, 11, 30))


def test_a_burst_today_does_not_move_the_tiles_or_the_trend(tmp_path: Path) -> None:
    """The demo's streamed bursts land on the current day: the Overview compares complete days,
    so its tiles and daily trend equal those of the generated history alone."""
    today = dt.datetime.now(dt.UTC).date()
    history = (
        f"select (date '{today}' - interval (i % 70 + 1) day + interval (i % 24) hour) "
        "as session_start, i % 13 = 0 as purchase_made, i % 3 as cart_additions, "
        "i % 3 > 0 and i % 13 <> 0 as cart_abandoned, "
        "case when i % 13 = 0 then 20.0 else 0 end as revenue from range(2100) t(i)"
    )
    burst = (
        f"select (date '{today}' + interval (i % 600) second) as session_start, "
        "i % 5 = 0 as purchase_made, 1 as cart_additions, i % 5 <> 0 as cart_abandoned, "
        "case when i % 5 = 0 then 50.0 else 0 end as revenue from range(1700) t(i)"
    )
    results = []
    for name, sql in (("history", history), ("with_burst", f"{history} union all {burst}")):
        db = _marts(
            tmp_path / f"{name}.duckdb",
            f"create table marts.fct_sessions as select *, session_start::date as session_date "
            f"from ({sql})",
        )
        with open_report_data(db) as data:
            tiles = overview.kpi_tiles(data)
            trend = overview.daily_trend(data)
        results.append(
            ([(t.key, t.value, t.previous) for t in tiles.tiles], list(trend.figure.data[0].y))
        )
    assert results[0] == results[1]
    sessions = dict((k, v) for k, v, _ in results[0][0])["sessions"]
    assert sessions == 900  # 30 of the 70 days, 30 sessions a day
