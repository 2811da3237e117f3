"""Build the static report site: one shared layout, one page per module in pages/, plotly.js
shipped once."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import plotly

from shoplens.reports.content import Page, chart_count, site_template
from shoplens.reports.data import ReportData, open_report_data
from shoplens.reports.notebook import notebook_page
from shoplens.reports.pages import (
    audiences,
    behaviour,
    models,
    monitoring,
    overview,
    quality,
    sales,
    segments,
)
from shoplens.reports.publish import check_site_folder, new_site

TEMPLATES = Path(__file__).with_name("templates")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
NOTEBOOK_PAGE = "notebook.html"

PageBuilder = Callable[[ReportData], Page]
PAGES: list[tuple[str, str, PageBuilder]] = [
    ("index", "Overview", overview.build),
    ("behaviour", "Behaviour", behaviour.build),
    ("sales", "Sales", sales.build),
    ("models", "Models", models.build),
    ("segments", "Segments", segments.build),
    ("audiences", "Audiences", audiences.build),
    ("monitoring", "Monitoring", monitoring.build),
    ("quality", "Data quality", quality.build),
]


@dataclass(frozen=True)
class NavItem:
    slug: str
    title: str

    @property
    def filename(self) -> str:
        return "index.html" if self.slug == "index" else f"{self.slug}.html"


@dataclass(frozen=True)
class SiteResult:
    """What a build wrote: the index path, per-page chart counts and the time it took."""

    index: Path
    charts: dict[str, int]
    notices: dict[str, int]
    seconds: float


def _when(value: dt.datetime | None) -> str:
    return "unknown" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    env.filters["when"] = _when
    return env


def build_site(db: Path, out: Path, *, with_notebook: bool = False) -> SiteResult:
    """Read the warehouse (read-only) and write the site to `out`; return what was written.

    `with_notebook` also executes notebooks/eda.ipynb against the warehouse and adds it as the
    Notebook page (`notebook.notebook_page`: a kernel start and every query, about 20 s).

    `out` must be new, empty or an earlier shoplens site (`publish.check_site_folder`); the
    site is built beside it and then takes its place, so nothing is written through a
    symbolic link and a failed build leaves `out` as it was.
    """
    started = time.perf_counter()
    check_site_folder(out)
    template = _environment().get_template("base.html")
    nav = [NavItem(slug, title) for slug, title, _ in PAGES]
    if with_notebook:
        nav.append(NavItem("notebook", "Notebook"))
    generated_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    charts: dict[str, int] = {}
    notices: dict[str, int] = {}
    with open_report_data(db) as data, site_template(), new_site(out) as staging:
        info = data.build_info()
        assets = staging / "assets"
        assets.mkdir()
        shutil.copyfile(PLOTLY_JS, assets / "plotly.min.js")
        shutil.copyfile(TEMPLATES / "site.css", assets / "site.css")
        for _slug, _title, builder in PAGES:
            page = builder(data)
            html = template.render(
                page=page, nav=nav, info=info, generated_at=generated_at, db_name=db.name
            )
            (staging / page.filename).write_text(html, encoding="utf-8")
            charts[page.filename] = chart_count(page.sections)
            notices[page.filename] = sum(1 for s in page.sections if s.kind == "notice")
        if with_notebook:
            html, charts[NOTEBOOK_PAGE] = notebook_page(db, nav)
            (staging / NOTEBOOK_PAGE).write_text(html, encoding="utf-8")
            notices[NOTEBOOK_PAGE] = 0
    return SiteResult(out / "index.html", charts, notices, time.perf_counter() - started)
