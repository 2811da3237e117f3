"""The report site in a real browser: Debian's headless chromium driven by Playwright.

Every page is opened over file://: no console errors, no request leaves file://, every chart
container holds a rendered Plotly plot, the KPI tiles match a direct SQL query, and hostile
strings in the data show as text without running. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from report_support import PAGE_FILES
from shoplens.reports import build_site
from shoplens.reports.content import format_value
from shoplens.reports.data import open_report_data
from shoplens.reports.pages import overview
from shoplens.reports.pages.overview import periods
from shoplens.warehouse import connect, ensure_raw_schema

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '"><svg onload=alert(3)>',
    "</script><script>window.__pwned=1</script>",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A chromium with a fresh profile; no network beyond file:// is ever needed."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@dataclass
class Visit:
    """What happened while a page loaded."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def visit(context: BrowserContext, path: Path, screenshot: str | None = None) -> Visit:
    """Open a page, wait until every chart has rendered, record errors, requests, dialogs."""
    page = context.new_page()
    seen = Visit(page)
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    page.on("request", lambda r: seen.requests.append(r.url))

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart')].every("
        "c => c.querySelector('.js-plotly-plot .main-svg'))",
        timeout=30_000,
    )
    if screenshot:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
    return seen


def assert_clean(seen: Visit) -> None:
    """No console errors, no uncaught exceptions, nothing fetched from outside file://."""
    assert seen.console_errors == []
    assert seen.page_errors == []
    assert [u for u in seen.requests if not u.startswith("file://")] == []
    assert seen.dialogs == []


def too_wide(page: Page) -> list[str]:
    """Tables and charts wider than the card (section) holding them, as "title: width > room"."""
    return page.evaluate(
        """() => [...document.querySelectorAll('main section')].flatMap(s => {
            const st = getComputedStyle(s);
            const room = s.getBoundingClientRect().width - parseFloat(st.paddingLeft)
                - parseFloat(st.paddingRight);
            return [...s.querySelectorAll('table, .js-plotly-plot')]
                .map(e => e.getBoundingClientRect().width)
                .filter(w => w > room + 1)
                .map(w => `${s.querySelector('h2').textContent}: ${w} > ${room}`);
        })"""
    )


def chart_state(page: Page) -> list[int]:
    """[chart containers, containers holding a rendered Plotly plot]."""
    return page.evaluate(
        "() => { const c = [...document.querySelectorAll('.chart')];"
        " return [c.length, c.filter(x => x.querySelector('.js-plotly-plot .main-svg')"
        " && x.querySelector('.js-plotly-plot').data.length > 0).length]; }"
    )


# -------------------------------------------------------------------------------------------
# A warehouse with nothing built: every page opens cleanly and says there is no data yet.
# -------------------------------------------------------------------------------------------


def test_empty_site_opens_cleanly(browser: BrowserContext, tmp_path: Path) -> None:
    db = tmp_path / "raw_only.duckdb"
    with connect(db) as con:
        ensure_raw_schema(con)
    out = tmp_path / "site"
    build_site(db, out)
    for name in PAGE_FILES:
        seen = visit(browser, out / name, f"empty-{name.removesuffix('.html')}.png")
        assert_clean(seen)
        assert chart_state(seen.page) == [0, 0]
        assert seen.page.locator(".empty").count() >= 1
        assert "Data as of" in seen.page.inner_text("header")
        seen.page.close()


# -------------------------------------------------------------------------------------------
# The built test warehouse (staging to ml): every chart renders, KPI tiles match SQL.
# -------------------------------------------------------------------------------------------

# Sections allowed to be empty on a freshly built warehouse: no streaming run has scored
# sessions, and the generator writes no loader rejects.
ALLOWED_EMPTY = {
    "Live scoring",
    "Live scores",
    # Monitoring on a warehouse nothing was streamed into: no live-scored session has an outcome
    "Live model quality per day",
    "Reliability of the live scores",
    "Rejected input by reason",
    "Kafka messages deleted before the sink read them",
    # the 6,000-session test warehouse has no hour x weekday x category cell with the default
    # minimum support (30 sessions); the notice says so (values: tests/test_audiences.py)
    "Time-targeted promotions",
}
MIN_CHARTS = {
    "index.html": 1,
    "behaviour.html": 7,
    "sales.html": 8,
    "models.html": 7,
    "segments.html": 3,
    "audiences.html": 0,
    "monitoring.html": 0,
    "quality.html": 1,
}


@pytest.fixture(scope="module")
def built_site(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built from the session's built warehouse."""
    out = tmp_path_factory.mktemp("site")
    build_site(built_warehouse, out)
    return out


@pytest.mark.parametrize("name", PAGE_FILES)
def test_built_page_renders_every_chart(
    browser: BrowserContext, built_site: Path, name: str
) -> None:
    assert not re.search(r"https?://", (built_site / name).read_text())  # no external URL
    seen = visit(browser, built_site / name, name.replace(".html", ".png"))
    assert_clean(seen)
    containers, rendered = chart_state(seen.page)
    assert containers >= MIN_CHARTS[name]
    assert rendered == containers
    empty = seen.page.eval_on_selector_all(
        "section.section-notice h2", "els => els.map(e => e.textContent)"
    )
    assert set(empty) <= ALLOWED_EMPTY, empty
    assert too_wide(seen.page) == []
    seen.page.set_viewport_size({"width": 1024, "height": 900})
    seen.page.wait_for_timeout(500)  # plotly redraws responsive charts after a resize
    assert too_wide(seen.page) == []
    seen.page.set_viewport_size({"width": 1280, "height": 900})
    header = seen.page.inner_text("header")
    assert "Data as of 2026-10-31" in header
    assert "Warehouse built unknown" not in header
    seen.page.close()


def expected_kpis(db: Path) -> tuple[dict[str, float], dict[str, float]]:
    """The five KPIs for the current and previous 30-day periods, straight from the marts."""
    with duckdb.connect(str(db), read_only=True) as con:
        as_of = con.execute("select max(session_start) from marts.fct_sessions").fetchone()[0]
        previous, current, end = periods(as_of)
        result = []
        for lo, hi in ((current, end), (previous, current)):
            sessions, buyers, carts, abandoned = con.execute(
                "select count(*), count(*) filter (where purchase_made), "
                "count(*) filter (where cart_additions > 0), "
                "count(*) filter (where cart_additions > 0 and not purchase_made) "
                "from marts.fct_sessions where session_start >= ? and session_start < ?",
                [lo, hi],
            ).fetchone()
            revenue, orders = con.execute(
                "select sum(revenue), count(distinct order_id) from marts.fct_order_lines "
                "where transaction_time >= ? and transaction_time < ?",
                [lo, hi],
            ).fetchone()
            result.append(
                {
                    "sessions": sessions,
                    "conversion_rate": buyers / sessions,
                    "revenue": revenue,
                    "average_order_value": revenue / orders,
                    "cart_abandonment": abandoned / carts,
                }
            )
    return result[0], result[1]


UNITS = {
    "sessions": "count",
    "conversion_rate": "rate",
    "revenue": "money",
    "average_order_value": "money",
    "cart_abandonment": "rate",
}


def test_kpi_tiles_match_sql(
    browser: BrowserContext, built_site: Path, built_warehouse: Path
) -> None:
    current, previous = expected_kpis(built_warehouse)
    assert current["sessions"] > 100 and previous["sessions"] > 100
    seen = visit(browser, built_site / "index.html")
    tiles = seen.page.eval_on_selector_all(
        ".tile",
        "els => els.map(e => [e.dataset.kpi, e.dataset.value, "
        "e.querySelector('.value').textContent, e.querySelector('.change').textContent])",
    )
    assert [t[0] for t in tiles] == list(UNITS)
    for key, raw, shown, change in tiles:
        assert float(raw) == pytest.approx(current[key], rel=1e-9), key
        assert shown == format_value(current[key], UNITS[key]), key
        if UNITS[key] == "rate":
            assert change == f"{(current[key] - previous[key]) * 100:+.1f} pp vs previous period"
        else:
            assert change == f"{(current[key] / previous[key] - 1) * 100:+.1f}% vs previous period"
    recommendations = seen.page.locator(".findings li").all_inner_texts()
    assert len(recommendations) >= 2
    assert recommendations[0].startswith("Most revenue is lost in abandoned carts in ")
    seen.page.close()


def test_funnel_runs_and_recommendations_in_the_browser(
    browser: BrowserContext, built_site: Path, built_warehouse: Path
) -> None:
    """The funnel counts sessions, recommendations carry intervals, the quality page lists the
    build that made this warehouse (from its own ops tables)."""
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        steps = con.execute(
            "select count(*) filter (where product_views > 0 or cart_additions > 0 "
            "or checkout_reached or purchase_made), "
            "count(*) filter (where cart_additions > 0 or checkout_reached or purchase_made), "
            "count(*) filter (where checkout_reached or purchase_made), "
            "count(*) filter (where purchase_made) from marts.fct_sessions"
        ).fetchone()
        tests = con.execute(
            "select count(*) from ops.dbt_node_results where resource_type = 'test' and "
            "invocation_id = (select invocation_id from ops.dbt_runs where command = 'build' "
            "and whole_project order by started_at desc limit 1)"
        ).fetchone()[0]
    seen = visit(browser, built_site / "behaviour.html")
    funnel = seen.page.evaluate(
        "() => [...document.querySelectorAll('section')]"
        ".find(s => s.querySelector('h2').textContent === 'Funnel')"
        ".querySelector('.js-plotly-plot').data[0].x"
    )
    assert [int(v) for v in funnel] == list(steps)
    seen.page.close()
    seen = visit(browser, built_site / "index.html")
    items = seen.page.locator(".findings li").all_inner_texts()
    assert any("95% CI" in item for item in items)
    assert "at least 20 sessions behind them" in seen.page.inner_text(".section-bullets")
    seen.page.close()
    seen = visit(browser, built_site / "quality.html")
    text = seen.page.inner_text("main")
    assert f"{tests:,} data tests and" in text
    assert "dbt runs since the last full build" in text
    seen.page.close()


# -------------------------------------------------------------------------------------------
# Hostile strings in the data show as text and never run.
# -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_site(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the built warehouse with hostile product, brand, category, segment and
    reject-reason strings, and the site built from it."""
    work = tmp_path_factory.mktemp("hostile")
    db = work / "hostile.duckdb"
    shutil.copy(built_warehouse, db)
    with duckdb.connect(str(db)) as con:
        top = con.execute(
            "select product_id from marts.dim_products order by revenue desc, product_id limit 1"
        ).fetchone()[0]
        con.execute(
            "update marts.dim_products set product_name = ?, brand = ? where product_id = ?",
            [HOSTILE[0], HOSTILE[1], top],
        )
        categories = [
            r[0]
            for r in con.execute("select category from marts.mart_category_popularity").fetchall()
        ]
    # the category the first recommendation names first (the most revenue lost in carts)
    with open_report_data(built_warehouse) as data:
        first = overview.recommendations(data).items[0]
    victim = min(categories, key=lambda c: first.find(c) if c in first else len(first))
    with duckdb.connect(str(db)) as con:
        for schema, table, column in con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() "
            "join duckdb_tables() using (database_name, schema_name, table_name) "
            "where schema_name = 'marts' and column_name in ('category', "
            "'dominant_category')"
        ).fetchall():
            con.execute(
                f"update {schema}.{table} set {column} = ? where {column} = ?", [HOSTILE[2], victim]
            )
        segment = con.execute("select min(segment_id) from ml.customer_segments").fetchone()[0]
        for table in ("ml.customer_segments", "ml.segment_profiles"):
            con.execute(
                f"update {table} set segment_name = ? where segment_id = ?", [HOSTILE[3], segment]
            )
        con.execute(
            "insert into marts.mart_data_quality values "
            "('rejects:kafka', ?, 'rejected_by_loader', 3)",
            [HOSTILE[0]],
        )
    out = work / "site"
    build_site(db, out)
    return out


def test_hostile_strings_show_as_text(browser: BrowserContext, hostile_site: Path) -> None:
    for name in PAGE_FILES:
        html = (hostile_site / name).read_text()
        for payload in HOSTILE:
            assert payload not in html, (name, payload)
        seen = visit(browser, hostile_site / name, f"hostile-{name.replace('.html', '.png')}")
        assert_clean(seen)
        assert seen.page.evaluate("() => window.__pwned") is None
        containers, rendered = chart_state(seen.page)
        assert rendered == containers
        seen.page.close()
    sales = visit(browser, hostile_site / "sales.html")
    cells = sales.page.locator("table td").all_inner_texts()
    assert HOSTILE[0] in cells and HOSTILE[1] in cells
    labels = sales.page.locator(".xtick text").all_text_contents()
    assert HOSTILE[2] in labels
    sales.page.close()
    segments = visit(browser, hostile_site / "segments.html")
    assert HOSTILE[3] in segments.page.locator(".legendtext").all_text_contents()
    assert HOSTILE[3] in segments.page.locator("table td").all_inner_texts()
    segments.page.close()
    quality = visit(browser, hostile_site / "quality.html")
    assert HOSTILE[0] in quality.page.locator(".ytick text").all_text_contents()
    quality.page.close()
    overview = visit(browser, hostile_site / "index.html")
    assert HOSTILE[2] in overview.page.inner_text(".findings")
    overview.page.close()


# -------------------------------------------------------------------------------------------
# Live scores (written by `shoplens sink --score`) appear on the Models page once they exist.
# -------------------------------------------------------------------------------------------

LIVE_DDL = """
create schema live;
create table live.session_scores (
    scored_at TIMESTAMP, session_id VARCHAR, customer_id BIGINT, model_name VARCHAR,
    model_version INTEGER, events_so_far BIGINT, last_event_id VARCHAR,
    last_event_time TIMESTAMP, probability DOUBLE, threshold DOUBLE, high_intent BOOLEAN)
"""


def test_live_scores_show_on_the_models_page(
    browser: BrowserContext, built_warehouse: Path, tmp_path: Path
) -> None:
    db = tmp_path / "scored.duckdb"
    shutil.copy(built_warehouse, db)
    with duckdb.connect(str(db)) as con:
        con.execute(LIVE_DDL)
        # 40 sessions scored 3 times each; the last score of every 4th session is high.
        con.execute("""
            insert into live.session_scores
            select timestamp '2026-11-01 10:00:00' + to_seconds(s * 10 + k), 'live-' || s, s,
                   'purchase_intent', 2, k + 1, 'e' || k, timestamp '2026-11-01 10:00:00',
                   case when k = 2 and s % 4 = 0 then 0.9 else 0.1 * k end, 0.5,
                   k = 2 and s % 4 = 0
            from range(40) t(s), range(3) u(k)""")
    out = tmp_path / "site"
    build_site(db, out)
    seen = visit(browser, out / "models.html", "models-live.png")
    assert_clean(seen)
    containers, rendered = chart_state(seen.page)
    assert containers == rendered == MIN_CHARTS["models.html"] + 1
    assert seen.page.locator(".empty").count() == 0
    live = seen.page.locator("section", has_text="Live scoring").locator("td")
    mean = (40 * 0.0 + 40 * 0.1 + 10 * 0.9 + 30 * 0.2) / 120
    assert live.all_inner_texts()[:5] == ["120", "40", "10", f"{mean:.3f}", "purchase_intent v2"]
    seen.page.close()


# -------------------------------------------------------------------------------------------
# A warehouse like a REES46 import (no order lines, no demographics, no category model):
# every page still opens cleanly and says what is missing.
# -------------------------------------------------------------------------------------------


def test_warehouse_without_orders_or_demographics(
    browser: BrowserContext, built_warehouse: Path, tmp_path: Path
) -> None:
    db = tmp_path / "clickstream.duckdb"
    shutil.copy(built_warehouse, db)
    with duckdb.connect(str(db)) as con:
        for table in (
            "marts.fct_order_lines",
            "marts.mart_sales_monthly",
            "marts.mart_age_distribution",
            "marts.mart_demographic_category",
        ):
            con.execute(f"delete from {table}")
        for table in ("ml.model_metrics", "ml.feature_importances", "ml.confusion_matrices"):
            con.execute(f"delete from {table} where model_name = 'category_choice'")
        as_of = con.execute("select max(session_start) from marts.fct_sessions").fetchone()[0]
        _, current, end = periods(as_of)
        revenue = con.execute(
            "select sum(revenue) from marts.fct_sessions "
            "where session_start >= ? and session_start < ?",
            [current, end],
        ).fetchone()[0]
    out = tmp_path / "site"
    build_site(db, out)
    notices: dict[str, list[str]] = {}
    for name in PAGE_FILES:
        seen = visit(browser, out / name)
        assert_clean(seen)
        containers, rendered = chart_state(seen.page)
        assert rendered == containers
        notices[name] = seen.page.locator(".empty").all_inner_texts()
        if name == "index.html":
            tile = seen.page.locator('[data-kpi="revenue"]')
            assert float(tile.get_attribute("data-value")) == pytest.approx(revenue)
            assert "from purchase events" in seen.page.inner_text(".section-tiles")
        seen.page.close()
    assert sum("has no customer demographics" in n for n in notices["sales.html"]) == 3
    assert sum("has no order lines" in n for n in notices["sales.html"]) == 2
    assert sum("category_choice" in n for n in notices["models.html"]) == 3
    assert notices["behaviour.html"] == [] and notices["segments.html"] == []


def test_notebook_page_renders_its_charts_offline(
    browser: BrowserContext, notebook_site: Path
) -> None:
    seen = visit(browser, notebook_site / "notebook.html")
    page = seen.page
    figures = page.locator(".plotly-graph-div").count()
    assert figures >= 9
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')].every("
        "d => d.querySelector('.main-svg') && d.querySelector('.plot-container'))",
        timeout=30_000,
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "notebook.png"), full_page=True)
    assert_clean(seen)  # no errors, nothing fetched beyond file://
    assert page.evaluate("() => typeof window.Plotly") == "object"
    assert page.inner_text("header nav a.current") == "Notebook"
    assert page.locator(".jp-CodeCell").count() >= 10  # the code is shown with its outputs
    page.click("header nav a[href='index.html']")
    page.wait_for_load_state("load")
    assert page.inner_text("header nav a[href='notebook.html']") == "Notebook"
    page.close()
