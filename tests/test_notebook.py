"""notebooks/eda.ipynb: stored without outputs, and runs top to bottom on the test warehouse."""

from __future__ import annotations

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
