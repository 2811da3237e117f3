"""dbt's on-run-end hook records every invocation in the warehouse it ran against, and the Data
quality page reads them from there: two warehouses sharing one dbt target folder never show
each other's results, and no local path reaches the pages."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import yaml

from shoplens.reports import build_site

ROOT = Path(__file__).resolve().parents[1]


def _cells(html: str) -> list[str]:
    return re.findall(r"<td>([^<]*)</td>", html)


def test_each_warehouse_shows_its_own_dbt_runs(
    built_warehouse: Path, small_warehouse: Path, dbt, tmp_path: Path
) -> None:
    # A: the session's fully built warehouse, then a partial refresh
    shared = tmp_path / "shared-dbt-folder"  # one target/ for both warehouses, as before
    a = tmp_path / "a" / "shop_a.duckdb"
    a.parent.mkdir()
    shutil.copy(built_warehouse, a)
    dbt(["build", "--selector", "after_burst"], a, shared)
    # B: the same raw data, only seeded, with the same target folder: dbt's artefacts there
    # are B's now, and must not show up as A's
    b = tmp_path / "b" / "shop_b.duckdb"
    b.parent.mkdir()
    shutil.copy(small_warehouse, b)
    dbt(["seed"], b, shared)
    assert json.loads((shared / "target" / "run_results.json").read_text())["args"]["which"] == (
        "seed"
    )

    # what the built warehouse's own full build ran, from dbt's run_results.json of that build
    build_results = json.loads((built_warehouse.parent / "target" / "run_results.json").read_text())
    assert build_results["args"]["which"] == "build"
    kinds = [r["unique_id"].split(".")[0] for r in build_results["results"]]
    kinds = [k for k in kinds if k != "operation"]  # the hook itself
    data_tests, unit_tests = kinds.count("test"), kinds.count("unit_test")
    assert data_tests > 100 and unit_tests >= 4

    with duckdb.connect(str(a), read_only=True) as con:
        runs = con.execute(
            "select command, selector, whole_project, nodes from ops.dbt_runs order by started_at"
        ).fetchall()
        a_ids = [r[0] for r in con.execute("select invocation_id from ops.dbt_runs").fetchall()]
        stored = con.execute(
            "select count(*) filter (where resource_type = 'test'), "
            "count(*) filter (where resource_type = 'unit_test') from ops.dbt_node_results "
            "where invocation_id = (select invocation_id from ops.dbt_runs "
            "where command = 'build' and whole_project)"
        ).fetchone()
    assert [r[:3] for r in runs] == [
        ("seed", None, True),
        ("build", None, True),
        ("build", "after_burst", False),
    ]
    assert runs[1][3] == len(kinds)
    assert stored == (data_tests, unit_tests)
    with duckdb.connect(str(b), read_only=True) as con:
        b_runs = con.execute("select invocation_id, command from ops.dbt_runs").fetchall()
    assert [r[1] for r in b_runs] == ["seed"]
    assert not set(a_ids) & {r[0] for r in b_runs}

    site_a, site_b = tmp_path / "site_a", tmp_path / "site_b"
    build_site(a, site_a)
    build_site(b, site_b)
    html_a = (site_a / "quality.html").read_text()
    html_b = (site_b / "quality.html").read_text()
    assert f"{data_tests:,} data tests and {unit_tests:,} unit tests" in html_a
    cells = _cells(html_a)
    assert cells[cells.index("pass") + 1] == f"{data_tests:,}"  # every test passed
    commands = [c for c in cells if c.startswith(("build", "seed"))]
    assert commands == ["build", "build --selector after_burst"]
    # B: no full build; its one run is the seed, none of A's build or tests
    assert "No full `dbt build` recorded in this warehouse yet" in html_b
    assert [c for c in _cells(html_b) if c.startswith(("build", "seed"))] == ["seed"]
    assert "data tests and" not in html_b
    # no local path on any page of either site
    for site in (site_a, site_b):
        for page in site.glob("*.html"):
            text = page.read_text()
            assert str(tmp_path) not in text, page
            assert not re.search(r"(?<![\w.])/(tmp|work|home|root)/", text), page


def test_the_built_warehouse_build_ran_every_unit_test(built_warehouse: Path) -> None:
    """The other fixtures' builds leave the unit tests out (fixed inputs, not their data): the
    session's full build runs every unit test of the project's YAML, and each passed."""
    defined = {
        f"unit_test.shoplens.{test['model']}.{test['name']}"
        for path in (ROOT / "models").rglob("_*.yml")
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    }
    results = json.loads((built_warehouse.parent / "target" / "run_results.json").read_text())
    ran = {r["unique_id"]: r["status"] for r in results["results"]}
    assert len(defined) >= 10
    assert {name: ran.get(name) for name in defined} == dict.fromkeys(defined, "pass")
