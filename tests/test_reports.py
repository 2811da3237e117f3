"""Report site without a browser: empty warehouses, offline output, CLI errors, tile maths."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from report_support import PAGE_FILES
from shoplens.reports import PAGES, build_site
from shoplens.reports.content import Tile, format_value
from shoplens.reports.pages.overview import PERIOD_DAYS, periods
from shoplens.warehouse import connect, ensure_raw_schema

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))


@pytest.fixture()
def raw_only_warehouse(tmp_path: Path) -> Path:
    """A warehouse with the raw schema and nothing built: every page must say so."""
    db = tmp_path / "raw_only.duckdb"
    with connect(db) as con:
        ensure_raw_schema(con)
    return db


def test_page_registry_names_the_fixed_files() -> None:
    files = ["index.html" if slug == "index" else f"{slug}.html" for slug, _, _ in PAGES]
    assert files == PAGE_FILES


def test_empty_warehouse_gives_notices_on_every_page(
    raw_only_warehouse: Path, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    result = build_site(raw_only_warehouse, out)
    assert sorted(result.charts) == sorted(PAGE_FILES)
    assert sum(result.charts.values()) == 0
    for name in PAGE_FILES:
        html = (out / name).read_text()
        assert result.notices[name] >= 1
        assert "No data yet" in html or "Nothing rejected" in html
        assert 'class="chart"' not in html
    index = (out / "index.html").read_text()
    assert "No data yet: marts.fct_sessions not in the warehouse yet" in index
    assert (
        "No data yet: ops.dbt_runs not in the warehouse yet" in (out / "quality.html").read_text()
    )


def test_site_is_offline_and_ships_plotly_once(raw_only_warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(raw_only_warehouse, out)
    scripts = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.js"))
    assert scripts == ["assets/plotly.min.js"]
    assert (out / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    for name in PAGE_FILES:
        html = (out / name).read_text()
        assert not re.search(r"https?://", html), name
        assert html.count('src="assets/plotly.min.js"') == 1
        for other in PAGE_FILES:  # the navigation links every page
            assert f'href="{other}"' in html


def test_layout_shows_as_of_and_build_time(raw_only_warehouse: Path, tmp_path: Path) -> None:
    with connect(raw_only_warehouse) as con:
        con.execute(
            "insert into raw.events (event_id, event_time) values "
            "('a', '2026-10-30 12:00:00'), ('b', '2026-10-31 08:15:00')"
        )
        _record_run(con, "inv-1", "build", "2026-11-01 09:29:00", "2026-11-01 09:30:00")
    out = tmp_path / "site"
    build_site(raw_only_warehouse, out)
    for name in PAGE_FILES:
        html = (out / name).read_text()
        assert "Data as of <b>2026-10-31 08:15 UTC</b>" in html
        assert "Warehouse built <b>2026-11-01 09:30 UTC</b>" in html
    assert (
        "The last full build (2026-11-01 09:29:00 UTC) ran no tests."
        in (out / "quality.html").read_text()
    )


def test_kpi_periods_are_two_adjacent_windows() -> None:
    previous, current, end = periods(dt.datetime(2026, 10, 31, 23, 59))
    assert end == dt.datetime(2026, 11, 1)
    assert current == end - dt.timedelta(days=PERIOD_DAYS)
    assert previous == current - dt.timedelta(days=PERIOD_DAYS)


def test_tiles_format_values_and_changes() -> None:
    assert format_value(1234567, "count") == "1,234,567"
    assert format_value(0.03456, "rate") == "3.5%"
    assert format_value(1234.5, "money") == "$1,234.50"
    assert format_value(None, "money") == "n/a"
    sessions = Tile("sessions", "Sessions", 1100, 1000)
    assert sessions.change() == "+10.0% vs previous period"
    assert sessions.tone() == "good"
    abandonment = Tile(
        "cart_abandonment", "Cart abandonment", 0.70, 0.65, "rate", higher_is_better=False
    )
    assert abandonment.change() == "+5.0 pp vs previous period"
    assert abandonment.tone() == "bad"
    assert Tile("revenue", "Revenue", 10.0, None, "money").change() == "no previous period"
    assert Tile("revenue", "Revenue", 10.0, 0.0, "money").change() == "previous period was zero"


def test_cli_report_without_warehouse_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            SHOPLENS,
            "report",
            "--db",
            str(tmp_path / "nope.duckdb"),
            "--out",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("shoplens: error: warehouse file not found")
    assert not (tmp_path / "site").exists()


def test_cli_report_prints_index_path(raw_only_warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = subprocess.run(
        [SHOPLENS, "report", "--db", str(raw_only_warehouse), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str((out / "index.html").resolve())
    assert "8 pages, 0 charts" in proc.stderr


def test_cli_report_refuses_a_file_as_out(raw_only_warehouse: Path, tmp_path: Path) -> None:
    clash = tmp_path / "a-file"
    clash.write_text("x")
    proc = subprocess.run(
        [SHOPLENS, "report", "--db", str(raw_only_warehouse), "--out", str(clash)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--out" in proc.stderr


RUNS_DDL = [
    "create schema if not exists ops",
    "create table if not exists ops.dbt_runs (invocation_id varchar, command varchar, "
    "selector varchar, select_args varchar, exclude_args varchar, full_refresh boolean, "
    "whole_project boolean, arguments varchar, dbt_version varchar, started_at timestamp, "
    "finished_at timestamp, nodes integer, passed integer, failed integer, skipped integer)",
    "create table if not exists ops.dbt_node_results (invocation_id varchar, "
    "unique_id varchar, resource_type varchar, node_name varchar, status varchar, "
    "failures bigint, execution_seconds double, started_at timestamp, "
    "completed_at timestamp, message varchar)",
    "create table if not exists ops.dbt_source_freshness (invocation_id varchar, "
    "source_name varchar, status varchar, max_loaded_at timestamp, snapshotted_at timestamp, "
    "age_seconds double)",
]


def _record_run(
    con,
    invocation: str,
    command: str,
    started: str,
    finished: str,
    selector: str | None = None,
    nodes: list[tuple[str, str, str, int | None]] = (),
) -> None:
    """A dbt invocation as the on-run-end hook (macros/store_run_results.sql) records it;
    `nodes` are (resource_type, name, status, failures)."""
    for sql in RUNS_DDL:
        con.execute(sql)
    passed = sum(1 for n in nodes if n[2] in ("pass", "success"))
    failed = sum(1 for n in nodes if n[2] in ("fail", "error"))
    con.execute(
        "insert into ops.dbt_runs values (?, ?, ?, null, null, false, ?, '{}', '1.11', ?, ?, "
        "?, ?, ?, 0)",
        [
            invocation,
            command,
            selector,
            selector is None,
            started,
            finished,
            len(nodes),
            passed,
            failed,
        ],
    )
    for kind, name, status, failures in nodes:
        con.execute(
            "insert into ops.dbt_node_results values (?, ?, ?, ?, ?, ?, 0.1, ?, ?, null)",
            [
                invocation,
                f"{kind}.shoplens.{name}",
                kind,
                name,
                status,
                failures,
                started,
                finished,
            ],
        )


def test_quality_page_reads_runs_from_the_warehouse(
    raw_only_warehouse: Path, tmp_path: Path
) -> None:
    with connect(raw_only_warehouse) as con:
        _record_run(
            con,
            "full",
            "build",
            "2026-11-01 09:00:00",
            "2026-11-01 09:30:00",
            nodes=[
                ("model", "fct_sessions", "success", None),
                ("test", "unique_fct_sessions_session_id", "pass", 0),
                ("test", "not_null_fct_sessions_x", "pass", 0),
                ("test", "reconcile_<b>revenue</b>", "fail", 3),
                ("unit_test", "test_split", "pass", None),
            ],
        )
        _record_run(
            con,
            "burst",
            "build",
            "2026-11-02 10:00:00",
            "2026-11-02 10:00:08",
            selector="after_burst",
            nodes=[("test", "unique_fct_sessions_session_id", "pass", 0)],
        )
        _record_run(con, "older", "build", "2026-10-01 09:00:00", "2026-10-01 09:30:00")
        con.execute(
            "insert into ops.dbt_source_freshness values ('f1', 'shop.events', 'warn', "
            "'2026-11-20 10:00:00', '2026-11-21 11:00:00', 90000)"
        )
    out = tmp_path / "site"
    build_site(raw_only_warehouse, out)
    html = (out / "quality.html").read_text()
    cells = re.findall(r"<td>([^<]*)</td>", html)
    assert cells[:6] == ["pass", "2", "1", "fail", "1", "0"]
    assert "fail: test reconcile_&lt;b&gt;revenue&lt;/b&gt;" in cells
    assert "3 data tests and 1 unit tests" in html
    # the full build, then the partial run after it; the older build is not listed
    runs = cells[cells.index("2026-11-01 09:00:00") :]
    assert runs[:7] == ["2026-11-01 09:00:00", "build", "1,800.0", "5", "4", "1", "0"]
    assert runs[7:9] == ["2026-11-02 10:00:00", "build --selector after_burst"]
    assert "2026-10-01 09:00:00" not in html
    assert cells[cells.index("shop.events") :][:4] == [
        "shop.events",
        "warn",
        "2026-11-20 10:00:00",
        "25.0",
    ]
    assert "recorded in ops.dbt_source_freshness" in html
    assert "Warehouse built <b>2026-11-02 10:00 UTC</b>" in html
