"""The analysts' notebook (notebooks/eda.ipynb) as a static page of the report site.

The notebook is executed in a fresh kernel against the warehouse (it opens it read-only, from
$SHOPLENS_DB), its Plotly figures, stored as `application/vnd.plotly.v1+json`, become HTML
divs that call the site's own copy of plotly.js, and nbconvert writes the page with the site's
header and navigation. Nothing on the page loads from the network.

nbclient, nbconvert and ipykernel are development dependencies: they are imported when a page
is made, and their absence is a NotebookError.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import plotly.io as pio

from shoplens.reports.content import PLOT_CONFIG

if TYPE_CHECKING:
    from nbformat import NotebookNode

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "eda.ipynb"
# extends nbconvert's JupyterLab template (lab/index.html.j2)
PAGE_TEMPLATE = Path(__file__).with_name("templates") / "notebook" / "page.html.j2"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Seconds one cell may run (the notebook's heaviest query is well under a second).
CELL_TIMEOUT = 300


class NavLink(Protocol):
    """A navigation entry of the site (site.NavItem)."""

    @property
    def slug(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def filename(self) -> str: ...


class NotebookError(Exception):
    """The notebook is missing or failed to run; the message says which cell and why."""


def execute(db: Path, notebook: Path = NOTEBOOK) -> NotebookNode:
    """Run `notebook` top to bottom in a new python3 kernel whose SHOPLENS_DB is `db`."""
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as exc:
        raise NotebookError(
            f"the notebook page needs the development dependencies (pip install -e '.[dev]'): {exc}"
        ) from exc
    if not notebook.is_file():
        raise NotebookError(f"no notebook at {notebook} (it ships with the source tree)")
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    try:
        client.execute(env={**os.environ, "SHOPLENS_DB": str(db.resolve())})
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise NotebookError(f"{notebook.name} failed on {db}: {first}") from exc
    return nb


def figures_to_html(nb: NotebookNode) -> int:
    """Replace every Plotly JSON output by an HTML div drawn with the page's plotly.js.

    Returns the number of figures converted.
    """
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            figure = output.get("data", {}).pop(PLOTLY_MIME, None)
            if figure is None:
                continue
            count += 1
            output["data"]["text/html"] = pio.to_html(
                figure,
                full_html=False,
                include_plotlyjs=False,
                div_id=f"notebook-chart-{count}",
                config=PLOT_CONFIG,
                validate=False,
            )
    return count


def render(
    nb: NotebookNode,
    nav: Sequence[NavLink],
    db_name: str,
    plotly_src: str = "assets/plotly.min.js",
) -> str:
    """The executed notebook as one HTML page (JupyterLab's look, the site's header)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file=str(PAGE_TEMPLATE))
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    resources: dict[str, Any] = {
        "metadata": {"name": "shoplens notebook"},
        "shoplens": {
            "nav": list(nav),
            "plotly_src": plotly_src,
            "db_name": db_name,
            "generated_at": generated,
        },
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def notebook_page(db: Path, nav: Sequence[NavLink], notebook: Path = NOTEBOOK) -> tuple[str, int]:
    """Execute the notebook on `db` and return its page and how many charts it holds."""
    nb = execute(db, notebook)
    charts = figures_to_html(nb)
    return render(nb, nav, db.name), charts
