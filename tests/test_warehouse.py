"""Warehouse connections (missing, locked, released files), the raw schema and bulk appends."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from shoplens import warehouse
from shoplens.warehouse import RAW_TABLES, WarehouseError


def test_ensure_raw_schema_is_idempotent_and_documented(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with warehouse.connect(db) as con:
        warehouse.ensure_raw_schema(con)
        con.execute("insert into raw.load_runs values (1, 'test', now()::timestamp, '{}')")
        warehouse.ensure_raw_schema(con)  # a second call keeps tables and rows
        tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select schema_name, table_name from duckdb_tables()"
            ).fetchall()
        }
        assert set(RAW_TABLES) <= tables
        assert con.execute("select count(*) from raw.load_runs").fetchone() == (1,)
        undocumented = con.execute(
            "select count(*) from duckdb_columns() where schema_name in ('raw', 'ground_truth')"
            " and (comment is null or comment = '')"
        ).fetchone()[0]
        assert undocumented == 0


def test_append_by_name_with_missing_columns_and_loaded_at(tmp_path: Path) -> None:
    stamp = dt.datetime(2026, 11, 21, 9, 30)
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        warehouse.ensure_raw_schema(con)
        # columns in another order than the table, one unknown to the contract, most missing
        data = pa.table({"price": [9.5, None], "event_id": ["a", "b"], "not_a_column": [1, 2]})
        assert warehouse.append(con, "raw.events", data, loaded_at=stamp) == 2
        warehouse.append(con, "raw.events", pa.table({"event_id": ["c"]}))
        rows = con.execute(
            "select event_id, price, user_id, loaded_at from raw.events order by event_id"
        ).fetchall()
    assert rows == [("a", 9.5, None, stamp), ("b", None, None, stamp), ("c", None, None, None)]


def test_start_run_numbers_runs_and_stores_params(tmp_path: Path) -> None:
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        warehouse.ensure_raw_schema(con)
        assert warehouse.start_run(con, "generate", {"seed": 1, "sessions": 10}) == 1
        assert warehouse.start_run(con, "kafka", {}) == 2
        kind, params = con.execute(
            "select kind, params from raw.load_runs where run_id = 1"
        ).fetchone()
    assert kind == "generate" and json.loads(params) == {"seed": 1, "sessions": 10}


def test_missing_file_and_bad_names_raise_warehouse_error(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="not found"):
        warehouse.open_connection(tmp_path / "absent.duckdb", read_only=True)
    with pytest.raises(WarehouseError, match="not found"):
        warehouse.open_connection(tmp_path / "absent.duckdb", create=False)
    with pytest.raises(WarehouseError, match="clashes with the schema 'marts'"):
        warehouse.open_connection(tmp_path / "marts.duckdb")
    assert not list(tmp_path.iterdir())


def test_lock_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(warehouse.LOCK_TIMEOUT_ENV, raising=False)
    assert warehouse.default_lock_timeout() == 30.0
    monkeypatch.setenv(warehouse.LOCK_TIMEOUT_ENV, "2.5")
    assert warehouse.default_lock_timeout() == 2.5
    monkeypatch.setenv(warehouse.LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(WarehouseError, match="number of seconds"):
        warehouse.default_lock_timeout()


def hold(db: Path, seconds: float) -> subprocess.Popen:
    """Another process holding `db` read-write for `seconds`, started once it holds it."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time\ncon = duckdb.connect({str(db)!r})\n"
            f"print('holding', flush=True)\ntime.sleep({seconds})\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_locked_file_times_out_then_opens_once_released(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    holder = hold(db, 60)
    try:
        began = time.monotonic()
        with pytest.raises(WarehouseError, match="locked by another process") as err:
            warehouse.open_connection(db, read_only=True, timeout=0.4)
        assert time.monotonic() - began >= 0.4
        assert warehouse.is_lock_error(err.value.__cause__)
    finally:
        holder.kill()
        holder.wait()
    holder = hold(db, 1.0)
    try:
        began = time.monotonic()
        con = warehouse.open_connection(db, timeout=20)  # waits for the holder to exit
        con.close()
        assert time.monotonic() - began < 20
    finally:
        holder.wait()
