"""notebooks/eda.ipynb: stored without outputs, runs top to bottom on the test warehouse, and
is published as the report site's Notebook page (`shoplens report --with-notebook`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "eda.ipynb"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_notebook_runs_on_the_built_warehouse(
    built_warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPLENS_DB", str(built_warehouse))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if PLOTLY_MIME in o.get("data", {})]
    assert len(figures) >= 9
    assert all(f["data"][PLOTLY_MIME]["data"] for f in figures)  # every figure has traces
    assert f"warehouse: {built_warehouse}" in outputs[0]["text"]
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        sessions = con.execute("select count(*) from marts.fct_sessions").fetchone()[0]
    overview = next(c for c in nb.cells if c.source.startswith("overview = q("))
    table = overview.outputs[0]["data"]["text/plain"]
    assert str(sessions) in table.splitlines()[1].split()


def test_site_publishes_the_executed_notebook_offline(
    built_warehouse: Path, notebook_site: Path
) -> None:
    out = notebook_site
    page = (out / "notebook.html").read_text(encoding="utf-8")
    charts = json.loads((out.parent / "charts.json").read_text())["notebook.html"]
    assert charts >= 9
    # every figure is an HTML div drawn by plotly.js; none is left as Plotly JSON
    assert page.count('class="plotly-graph-div"') == charts
    assert page.count("Plotly.newPlot(") == charts
    assert PLOTLY_MIME not in page
    # the only script loaded is the site's own copy of plotly.js; no script names a URL
    tags = re.findall(r"<script\b[^>]*>", page)
    assert [re.search(r'src="([^"]*)"', t)[1] for t in tags if "src=" in t] == [
        "assets/plotly.min.js"
    ]
    assert not [t for t in tags if re.search(r"https?:", t)]
    assert (out / "assets" / "plotly.min.js").is_file()
    # executed on this warehouse: its path and its session count are on the page
    assert f"warehouse: {built_warehouse.resolve()}" in page
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        sessions = con.execute("select count(*) from marts.fct_sessions").fetchone()[0]
    assert f"<td>{sessions}</td>" in page
    assert "Traceback" not in page
    # every page links to it; it is the current page of its own navigation
    for name in ("index.html", "sales.html", "quality.html"):
        assert '<a href="notebook.html">Notebook</a>' in (out / name).read_text(encoding="utf-8")
    links = re.findall(r"<a\b[^>]*>", page)
    assert [a for a in links if 'class="current"' in a] == [
        next(a for a in links if 'href="notebook.html"' in a)
    ]
