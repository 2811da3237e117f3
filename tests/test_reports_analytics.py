"""The numbers the pages show: minimum support, Wilson intervals, impact ranking, small groups.

Hand-made marts pin the rules; the REES46 sample (3,000 real events, built with dbt) pins the
case that once produced "Other (2 of 2 carts abandoned)".
"""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest

from shoplens.reports.content import Bullets
from shoplens.reports.data import open_report_data
from shoplens.reports.pages import overview
from shoplens.reports.stats import MIN_SUPPORT, rate_with_interval, wilson

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "rees46_sample.csv"
SHOPLENS = str(Path(sys.executable).with_name("shoplens"))


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
        "Most revenue is lost in abandoned carts in Electronics (about 15,000 from 30 of 50 "
        "carts abandoned), Grocery (about 600 from 60 of 100 carts abandoned):"
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


@pytest.fixture(scope="module")
def rees46_warehouse(tmp_path_factory: pytest.TempPathFactory, dbt) -> Path:
    """The REES46 sample loaded and built (seed + build)."""
    work = tmp_path_factory.mktemp("rees46")
    db = work / "rees46.duckdb"
    subprocess.run(
        [SHOPLENS, "load-events", "--db", str(db), "--format", "rees46", str(SAMPLE)],
        check=True,
        capture_output=True,
    )
    dbt(["seed"], db, work)
    dbt(["build"], db, work)
    return db


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
