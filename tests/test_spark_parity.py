"""The dbt project on Spark gives what it gives on DuckDB (issue 14).

The same generated raw data (a few hundred sessions) is built with `--selector spark` (every
seed, SQL model, data test and unit test; models/ml stays on DuckDB) on DuckDB and on a local
Spark session; then a burst of new events (new sessions, a late event of an old session, a
duplicate) is appended and both are built again, incrementally. After each build every
relation the project builds equals on both engines: the same columns with the same types, the
same rows (doubles within TOLERANCE, relative or absolute), `built_at` aside (when a row was
written). Spark's relations are read from the Parquet its on-run-end hook exports.

`make test` runs it, first on one of its two workers (tests/conftest.py, FIRST_FILES), beside
the other worker's files; `make test-spark` runs it alone. Cost: every Spark dbt command (raw
registration, full build; registration, incremental run) runs in one process
(tests/dbt_worker.py): one Spark start-up and one parse instead of one per command, with
profiles.yml's small-data settings (SMALL_DATA_SPARK), and the DuckDB build of each step runs
meanwhile. Without Java or the spark extra the tests fail with one line saying what is
missing; they do not skip.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from cli_support import run_shoplens
from dbt_worker import DbtWorker, check
from shoplens import warehouse
from shoplens.config import PROJECT_ROOT
from shoplens.generate import generate_and_load, load_world, simulate_sessions
from shoplens.spark import export_raw, warehouse_from_parquet

SESSIONS = 300
END = dt.date(2026, 10, 31)
SELECT = ["--selector", "spark"]
# What the project builds (not the raw sources, nor ops.*: dbt's run log of each engine).
COMPARED_SCHEMAS = ("reference", "staging", "intermediate", "marts")
TOLERANCE = 1e-9
# DuckDB's names for Spark's Parquet timestamps (INT96, or UTC instants) are other names of the
# type the DuckDB build has.
SAME_TYPE = {"TIMESTAMP_NS": "TIMESTAMP", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP"}
# built_at: when a row was written. event_key_hash: a 64-bit hash of the event key, DuckDB's
# hash() there and Spark's xxhash64 here (macros/portable.sql, shoplens_hash64): what it groups
# is the same, its values are not.
IGNORED_COLUMNS = ("built_at", "event_key_hash")
# profiles.yml's settings for a few hundred rows in one process (its comments say what each
# does): no metastore (every Spark command runs in the one process of the worker), one shuffle
# partition, no adaptive re-planning, no Java generated and compiled per query, a C1-only JIT
# and the serial GC. Together they took the full Spark build from 443 to 300 s of CPU (baseline
# at load 3-7, these at 7-16). The relations are the same either way.
SMALL_DATA_SPARK = {
    "SHOPLENS_SPARK_CATALOG": "in-memory",
    "SHOPLENS_SPARK_SHUFFLE_PARTITIONS": "1",
    "SHOPLENS_SPARK_ADAPTIVE": "false",
    "SHOPLENS_SPARK_CODEGEN": "false",
    "SHOPLENS_SPARK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def _burst(db: Path, loaded_at: dt.datetime) -> None:
    """New sessions and order lines, a late event of the oldest session (its old day partition
    is rewritten on Spark) and a second copy of that session's first event (a duplicate)."""
    with warehouse.connect(db) as con:
        world = load_world(con)
        cursor = con.execute(
            "select * exclude (loaded_at) from raw.events "
            "where user_session = (select min(user_session) from raw.events) "
            "order by event_time, event_id limit 1"
        )
        names = [d[0] for d in cursor.description]
        old = dict(zip(names, cursor.fetchall()[0], strict=True))
        events, lines = simulate_sessions(
            world,
            40,
            dt.datetime(2026, 10, 30),
            dt.datetime(2026, 11, 1),
            seed=5,
            id_prefix="burst-",
            defect_rate=0.02,
            source="kafka",
        )
        late = {**old, "event_id": "burst-late"}
        late["event_time"] = old["event_time"] - dt.timedelta(seconds=40)
        edge = pa.Table.from_pylist([late, old], schema=events.schema)
        warehouse.append(con, "raw.events", events, loaded_at=loaded_at)
        warehouse.append(con, "raw.events", edge, loaded_at=loaded_at)
        warehouse.append(con, "raw.transactions", lines, loaded_at=loaded_at)


def _relations(db: Path) -> list[str]:
    """`schema.name` of every relation the DuckDB build made in COMPARED_SCHEMAS."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ? and table_catalog = current_database() order by all",
            [list(COMPARED_SCHEMAS)],
        ).fetchall()
    return [f"{s}.{t}" for s, t in rows]


def _same(a: object, b: object, is_float: bool) -> bool:
    if is_float and isinstance(a, float) and isinstance(b, float):
        both_nan = math.isnan(a) and math.isnan(b)
        return both_nan or math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return a == b


def _differences(db: Path, export: Path, relation: str) -> list[str]:
    """How the DuckDB relation and Spark's export of it differ (empty when they are equal)."""
    schema, name = relation.split(".")
    folder = export / schema / name
    if not any(folder.glob("*.parquet")):
        return [f"{relation}: not built or not exported on Spark"]
    files = str(folder / "*.parquet")
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{db}' as duck (read_only)")
        duck_types = {c: t for c, t, *_ in con.execute(f"describe duck.{relation}").fetchall()}
        spark_types = {
            c: SAME_TYPE.get(t, t)
            for c, t, *_ in con.execute(f"describe from read_parquet('{files}')").fetchall()
        }
        problems = [
            f"{relation}.{c}: {duck_types.get(c)} on DuckDB, {spark_types.get(c)} on Spark"
            for c in sorted(set(duck_types) | set(spark_types))
            if duck_types.get(c) != spark_types.get(c) and c not in IGNORED_COLUMNS
        ]
        if problems:
            return problems
        columns = [c for c in duck_types if c not in IGNORED_COLUMNS]
        select = ", ".join(f'"{c}"' for c in columns)
        duck = con.execute(f"select {select} from duck.{relation} order by all").fetchall()
        spark = con.execute(f"select {select} from read_parquet('{files}') order by all").fetchall()
    if len(duck) != len(spark):
        return [f"{relation}: {len(duck)} rows on DuckDB, {len(spark)} on Spark"]
    floats = [duck_types[c] in ("DOUBLE", "FLOAT") for c in columns]
    for d_row, s_row in zip(duck, spark, strict=True):
        for column, d, s, is_float in zip(columns, d_row, s_row, floats, strict=True):
            if not _same(d, s, is_float):
                return [f"{relation}.{column}: {d!r} on DuckDB, {s!r} on Spark in {d_row}"]
    return []


def _require_spark() -> None:
    """Fail (not skip) with one line when what the spark target needs is missing: `make
    test-spark` installs the spark extra, and the machine image has Java 17."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.fail("the spark extra is not installed: pip install -e '.[spark]'", pytrace=False)
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        pytest.fail(
            "no Java for the local Spark session: install Java 17+ (Debian: "
            "openjdk-17-jre-headless) or set JAVA_HOME",
            pytrace=False,
        )
    proc = subprocess.run([java, "-version"], capture_output=True, text=True)
    found = re.search(r'version "(\d+)', proc.stderr)
    if found is None or int(found.group(1)) < 17:
        first = (proc.stderr.splitlines() or ["no version"])[0]
        pytest.fail(f"Spark 4 needs Java 17+, {java} is: {first}", pytrace=False)


@pytest.fixture(scope="module")
def spark_full(
    tmp_path_factory: pytest.TempPathFactory, dbt: Callable
) -> Iterator[dict[str, object]]:
    """The same generated raw data built on DuckDB and on Spark: {'work', 'db' (the DuckDB
    warehouse, built in place), 'lake' (its raw tables as Parquet, Spark's raw.*), 'spark' (the
    dbt worker of the Spark commands), 'full' (a copy of the DuckDB warehouse, Spark's export
    folder)}. Every Spark command runs in one process: one Spark start-up, one parse."""
    _require_spark()
    work = tmp_path_factory.mktemp("spark")
    db = work / "parity.duckdb"
    generate_and_load(
        db, sessions=SESSIONS, seed=13, days=30, end=END, defect_rate=0.02, progress=False
    )
    lake = work / "lake"
    spark = DbtWorker(
        PROJECT_ROOT,
        work / "spark-dbt",
        "spark",
        f"{{parquet_export_dir: '{work / 'export'}'}}",
        {
            "SHOPLENS_SPARK_DIR": str(work / "spark"),
            "DBT_PROFILES_DIR": str(PROJECT_ROOT),
            **SMALL_DATA_SPARK,
        },
    )
    state: dict[str, object] = {"work": work, "db": db, "lake": lake, "spark": spark}
    try:
        _register(state)
        state["full"] = _build_both(dbt, state, "full")
        yield state
    finally:
        spark.close()


def _register(state: dict) -> None:
    """What `shoplens spark-load` does (README): the raw tables to Parquet, registered as
    Spark's raw.* (again after new raw rows: a registered table keeps its listing of files)."""
    tables = export_raw(state["db"], state["lake"])
    assert {t.name for t in tables} >= {"events", "transactions"}
    names = [f"{t.schema}.{t.name}" for t in tables]
    location = json.dumps({"location": str(state["lake"]), "tables": names})
    state["spark"].run(["run-operation", "register_raw_tables", "--args", location])


def _build_both(dbt: Callable, state: dict, step: str) -> tuple[Path, Path]:
    """`dbt build --selector spark` (the full step: every test runs on both engines) or `dbt run
    --selector spark` (the incremental step: the data only, half the Spark time) on Spark, which
    exports every relation as Parquet, and meanwhile on DuckDB; returns (a copy of the DuckDB
    warehouse, Spark's export folder)."""
    work, db = state["work"], state["db"]
    command = ["build" if step == "full" else "run", *SELECT]
    on_spark = state["spark"].submit(command)
    dbt(command, db, work / "duckdb")
    check(command, on_spark)
    export = work / f"export-{step}"
    (work / "export").rename(export)
    copy = work / f"duckdb-{step}.duckdb"
    shutil.copy(db, copy)
    return copy, export


@pytest.fixture(scope="module")
def spark_builds(spark_full: dict, dbt: Callable) -> dict[str, tuple[Path, Path]]:
    """{step: (DuckDB warehouse, Spark's export folder)} after the full build and after the
    incremental one that follows a burst appended to the same raw data."""
    _burst(spark_full["db"], dt.datetime.now(dt.UTC).replace(tzinfo=None))
    _register(spark_full)
    return {"full": spark_full["full"], "incremental": _build_both(dbt, spark_full, "incremental")}


def test_every_relation_is_equal_after_the_full_build(spark_full) -> None:
    _assert_equal(*spark_full["full"])


def test_every_relation_is_equal_after_the_incremental_build(spark_builds) -> None:
    _assert_equal(*spark_builds["incremental"])


def _assert_equal(db: Path, export: Path) -> None:
    relations = _relations(db)
    assert {"intermediate.int_events_sessionized", "marts.mart_funnel_daily"} <= set(relations)
    assert len(relations) > 40
    problems = [line for relation in relations for line in _differences(db, export, relation)]
    assert not problems, "\n".join(problems)


def _count(export: Path, relation: str) -> int:
    with duckdb.connect() as con:
        files = export / relation.replace(".", "/") / "*.parquet"
        row = con.execute(f"select count(*) from read_parquet('{files}')").fetchone()
    assert row is not None
    return int(row[0])


def test_the_incremental_build_on_spark_has_the_burst(spark_builds) -> None:
    """The incremental comparison is not of two stale copies: Spark's sessions grew by the
    burst's 40, and every raw event is staged or quarantined (none lost, none twice)."""
    full, incremental = spark_builds["full"][1], spark_builds["incremental"][1]
    grown = _count(incremental, "intermediate.int_sessions_aggregated") - _count(
        full, "intermediate.int_sessions_aggregated"
    )
    assert 38 <= grown <= 42
    assert _count(incremental, "raw.events") == _count(
        incremental, "staging.stg_shop__events"
    ) + _count(incremental, "staging.stg_shop__events_quarantined")


def test_report_site_from_sparks_parquet_matches_the_duckdb_one(spark_full, tmp_path: Path) -> None:
    """`shoplens report --marts-parquet` builds the pages from Spark's export: the same charts
    on every page as the site of the DuckDB build (neither has the ml tables)."""
    from shoplens.reports import build_site

    duck_db, export = spark_full["full"]
    proc = run_shoplens("report", "--marts-parquet", str(export), "--out", str(tmp_path / "spark"))
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == (tmp_path / "spark" / "index.html").resolve()
    from_parquet = tmp_path / "from-parquet.duckdb"
    warehouse_from_parquet(export, from_parquet)
    spark_site = build_site(from_parquet, tmp_path / "spark2")
    duck_site = build_site(duck_db, tmp_path / "duck")
    assert spark_site.charts == duck_site.charts
    assert spark_site.charts["index.html"] > 0 and spark_site.charts["sales.html"] > 0


def test_report_from_a_folder_without_parquet_is_one_line(tmp_path: Path) -> None:
    proc = run_shoplens("report", "--marts-parquet", str(tmp_path), "--out", str(tmp_path / "o"))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"shoplens: error: {tmp_path} holds no <schema>/<table>/*.parquet folders"
    ]


def test_spark_load_of_a_missing_warehouse_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.duckdb"
    proc = run_shoplens("spark-load", "--db", str(missing), "--out", str(tmp_path / "lake"))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"shoplens: error: warehouse file not found: {missing} (run `shoplens generate` first)"
    ]
    assert not (tmp_path / "lake").exists()
