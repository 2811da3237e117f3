"""The report site in a real browser: Debian's headless chromium driven by Playwright.

Every page is opened over file://: no console errors, no request leaves file://, every chart
container holds a rendered Plotly plot, the KPI tiles match a direct SQL query, and hostile
strings in the data show as text without running. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from shoplens.reports import build_site
from shoplens.warehouse import connect, ensure_raw_schema

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
PAGE_FILES = ["index.html", "behaviour.html", "sales.html", "models.html", "segments.html",
              "quality.html"]
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "\"><svg onload=alert(3)>",
    "</script><script>window.__pwned=1</script>",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """A chromium with a fresh profile; no network beyond file:// is ever needed."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
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
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error"
            else None)
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    page.on("request", lambda r: seen.requests.append(r.url))

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.chart')].every("
        "c => c.querySelector('.js-plotly-plot .main-svg'))", timeout=30_000)
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


def chart_state(page: Page) -> list[int]:
    """[chart containers, containers holding a rendered Plotly plot]."""
    return page.evaluate(
        "() => { const c = [...document.querySelectorAll('.chart')];"
        " return [c.length, c.filter(x => x.querySelector('.js-plotly-plot .main-svg')"
        " && x.querySelector('.js-plotly-plot').data.length > 0).length]; }")


# -------------------------------------------------------------------------------------------
# A warehouse with nothing built: every page opens cleanly and says there is no data yet.
# -------------------------------------------------------------------------------------------

def test_empty_site_opens_cleanly(browser: BrowserContext, tmp_path: Path) -> None:
    db = tmp_path / "raw_only.duckdb"
    with connect(db) as con:
        ensure_raw_schema(con)
    out = tmp_path / "site"
    build_site(db, out, dbt_target=tmp_path / "no-target")
    for name in PAGE_FILES:
        seen = visit(browser, out / name, f"empty-{name.removesuffix('.html')}.png")
        assert_clean(seen)
        assert chart_state(seen.page) == [0, 0]
        assert seen.page.locator(".empty").count() >= 1
        assert "Data as of" in seen.page.inner_text("header")
        seen.page.close()
