"""The `shoplens` command line, run as a user runs it: a subprocess of the installed script."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cli_support import run_shoplens

run = run_shoplens


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    """Non-zero exit, exactly one line on stderr naming the problem, no traceback."""
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("shoplens: error: "), lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_help_lists_subcommands_with_one_line_help() -> None:
    proc = run("--help")
    assert proc.returncode == 0
    listing = proc.stdout.split("Commands:", 1)[1].strip().splitlines()
    helps = dict(line.split(None, 1) for line in listing)
    assert set(helps) == {
        "audience",
        "broker",
        "generate",
        "load-events",
        "report",
        "sink",
        "spark-load",
        "sql",
        "stream",
    }
    # one complete line each: no wrapped continuation lines, no truncation
    assert len(listing) == len(helps)
    assert all(h.endswith(".") and "..." not in h for h in helps.values())
    assert helps["generate"].startswith("Simulate a shop")
    gen = run("generate", "--help")
    assert gen.returncode == 0
    for option in ("--sessions", "--seed", "--days", "--end", "--defects", "--db"):
        assert option in gen.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["frobnicate"], "frobnicate"),
        (["generate", "--sessions", "0"], "--sessions"),
        (["generate", "--sessions", "many"], "--sessions"),
        (["generate", "--seed", "-1"], "--seed"),
        (["generate", "--defects", "2"], "--defects"),
        (["generate", "--end", "2026-13-01"], "--end"),
        (["generate", "--bogus"], "--bogus"),
        (["sql"], "QUERY"),
    ],
)
def test_wrong_arguments_give_one_line_and_usage_exit(
    args: list[str], needle: str, tmp_path: Path
) -> None:
    proc = run(*args, "--db", str(tmp_path / "w.duckdb")) if args != ["frobnicate"] else run(*args)
    assert_one_line_error(proc, needle)
    assert proc.returncode == 2
    assert not (tmp_path / "w.duckdb").exists()


def test_sql_on_missing_warehouse_is_one_line(tmp_path: Path) -> None:
    proc = run("sql", "--db", str(tmp_path / "absent.duckdb"), "select 1")
    assert_one_line_error(proc, "not found", "absent.duckdb")
    assert proc.returncode == 1


def test_warehouse_named_like_a_schema_is_refused(tmp_path: Path) -> None:
    proc = run("generate", "--db", str(tmp_path / "raw.duckdb"), "--sessions", "10")
    assert_one_line_error(proc, "clashes with the schema 'raw'")
    assert not (tmp_path / "raw.duckdb").exists()


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    db = tmp_path / "cli.duckdb"
    proc = run("generate", "--db", str(db), "--sessions", "300", "--seed", "9", "--defects", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("run 1: 300 sessions") and proc.stdout.count("\n") == 1
    assert proc.stderr == ""  # the progress bar only draws on a terminal
    return db


def test_generate_then_sql_prints_results(generated: Path) -> None:
    with duckdb.connect(str(generated), read_only=True) as con:
        sessions = con.execute("select count(distinct user_session) from raw.events").fetchone()
    assert sessions == (300,)
    table = run(
        "sql",
        "--db",
        str(generated),
        "select count(distinct user_session) as n_sessions from raw.events",
    )
    assert table.returncode == 0, table.stderr
    assert "n_sessions" in table.stdout and "300" in table.stdout
    csv = run(
        "sql",
        "--db",
        str(generated),
        "--csv",
        "select persona, count(*) as n from ground_truth.customer_personas "
        "group by all order by persona limit 2",
    )
    assert csv.returncode == 0, csv.stderr
    lines = csv.stdout.strip().splitlines()
    assert lines[0] == "persona,n" and len(lines) == 3
    assert lines[1].split(",")[0] == "browser"


def test_bad_query_is_one_line(generated: Path) -> None:
    proc = run("sql", "--db", str(generated), "select * from no_such_table")
    assert_one_line_error(proc, "query failed", "no_such_table")


@pytest.fixture
def locked(generated: Path) -> Iterator[Path]:
    """The warehouse held read-write by another process for the duration of the test."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(generated)!r})\n"
            "print('holding', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield generated
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_locked_warehouse_is_one_line_after_waiting(locked: Path) -> None:
    env = {"SHOPLENS_LOCK_TIMEOUT": "0.5"}
    for args in (["sql", "select 1"], ["generate", "--sessions", "10"]):
        proc = run(args[0], "--db", str(locked), *args[1:], env=env)
        assert_one_line_error(proc, "locked by another process")
        assert proc.returncode == 1
