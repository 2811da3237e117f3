"""The dbt `spark` target's raw data: a DuckDB warehouse's landing tables as Parquet, registered
as Spark tables (`raw.*`, `live.*`) by the dbt macro `register_raw_tables`.

A real deployment skips the export: its loaders write Parquet to its own lake, and
`dbt run-operation register_raw_tables --target spark --args '{location: <lake root>}'`
registers `<root>/<schema>/<table>/` as the source tables (see README, Beyond one machine).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shoplens.warehouse import WarehouseError, connect

# The schemas of the dbt sources: the loaders' landing tables and the live scorer's table.
SOURCE_SCHEMAS = ("raw", "live")
# Where `shoplens spark-load` writes the Parquet when no folder is given (profiles.yml: spark).
DEFAULT_SPARK_DIR = "spark"


class SparkLoadError(Exception):
    """Exporting or registering the raw tables failed; the message is one line."""


@dataclass(frozen=True)
class ExportedTable:
    """One landing table written as Parquet."""

    schema: str
    name: str
    rows: int
    path: Path


def spark_dir() -> Path:
    """The Spark target's folder ($SHOPLENS_SPARK_DIR, else spark/), as profiles.yml uses it."""
    return Path(os.environ.get("SHOPLENS_SPARK_DIR", DEFAULT_SPARK_DIR))


def export_raw(db: Path, out: Path) -> list[ExportedTable]:
    """Write every table of the warehouse's source schemas to `out/<schema>/<table>/` (one
    Parquet file each, the folder replaced whole). Timestamps are written as UTC instants, so
    Spark reads them as its `timestamp` (a DuckDB TIMESTAMP would arrive as `timestamp_ntz`)."""
    exported = []
    with connect(db, read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema in ? "
            "and table_catalog = current_database() order by all",
            [list(SOURCE_SCHEMAS)],
        ).fetchall()
        if not any(schema == "raw" for schema, _ in tables):
            raise SparkLoadError(f"{db} has no raw tables: run `shoplens generate` first")
        for schema, name in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? and table_catalog = current_database() "
                "order by ordinal_position",
                [schema, name],
            ).fetchall()
            select = ", ".join(
                f'cast("{column}" as timestamptz) as "{column}"'
                if dtype == "TIMESTAMP"
                else f'"{column}"'
                for column, dtype in columns
            )
            folder = out / schema / name
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            path = folder / "part-0.parquet"
            query = f'select {select} from "{schema}"."{name}"'
            escaped = str(path).replace("'", "''")
            con.execute(f"copy ({query}) to '{escaped}' (format parquet)")
            rows = con.execute(f'select count(*) from "{schema}"."{name}"').fetchone()
            exported.append(ExportedTable(schema, name, int(rows[0]) if rows else 0, path))
    return exported


def register_raw(
    location: Path,
    tables: list[str],
    project_dir: Path,
    target: str = "spark",
    extra_args: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> None:
    """Register `location/<schema>/<table>/` as the Spark tables `tables` ('raw.events', ...):
    `dbt run-operation register_raw_tables` on `target` (one Spark session start, about 10 s).
    `extra_args` go to dbt (e.g. --target-path), `extra_env` to its environment."""
    if importlib.util.find_spec("pyspark") is None:
        raise SparkLoadError("the spark extra is not installed: pip install -e '.[spark]'")
    dbt = Path(sys.executable).with_name("dbt")
    args = json.dumps({"location": str(location.resolve()), "tables": tables})  # JSON is YAML
    cmd = [
        str(dbt),
        "run-operation",
        "register_raw_tables",
        "--args",
        args,
        "--target",
        target,
        "--project-dir",
        str(project_dir),
        *(extra_args or []),
    ]
    env = {"DBT_PROFILES_DIR": str(project_dir), **os.environ, **(extra_env or {})}
    proc = subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
        errors = [line for line in lines if "rror" in line] or lines[-1:]
        raise SparkLoadError(
            "dbt run-operation register_raw_tables failed: "
            + (errors[-1].strip() if errors else f"exit code {proc.returncode}")
        )


def spark_load(
    db: Path, project_dir: Path, out: Path | None = None, target: str = "spark"
) -> list[ExportedTable]:
    """Export the warehouse's raw tables to Parquet under `out` (default: <spark dir>/lake) and
    register them on the dbt `target`. Returns what was written."""
    if not db.exists():
        raise WarehouseError(f"warehouse file not found: {db} (run `shoplens generate` first)")
    location = out if out is not None else spark_dir() / "lake"
    tables = export_raw(db, location)
    register_raw(location, [f"{t.schema}.{t.name}" for t in tables], project_dir, target)
    return tables


def warehouse_from_parquet(folder: Path, db: Path) -> list[str]:
    """Build a DuckDB warehouse at `db` (a new file) with one table per Parquet folder
    `folder/<schema>/<table>/` (what `export_relations_parquet` writes from Spark). Timestamps
    with a time zone become UTC TIMESTAMPs, as the DuckDB build has them. Returns the tables."""
    if not folder.is_dir():
        raise SparkLoadError(f"{folder}: no such folder of Parquet relations")
    if db.exists():
        raise SparkLoadError(f"{db} exists already: give a new warehouse path")
    tables = [
        table_dir
        for schema_dir in sorted(folder.iterdir())
        if schema_dir.is_dir()
        for table_dir in sorted(schema_dir.iterdir())
        if table_dir.is_dir() and any(table_dir.glob("*.parquet"))
    ]
    if not tables:
        raise SparkLoadError(f"{folder} holds no <schema>/<table>/*.parquet folders")
    created = []
    with connect(db) as con:
        con.execute("set TimeZone = 'UTC'")
        for table_dir in tables:
            schema, name = table_dir.parent.name, table_dir.name
            files = str(table_dir / "*.parquet").replace("'", "''")
            columns = con.execute(f"describe select * from read_parquet('{files}')").fetchall()
            select = ", ".join(
                f'cast("{c[0]}" as timestamp) as "{c[0]}"'
                if str(c[1]).startswith(("TIMESTAMP WITH", "TIMESTAMP_NS"))
                else f'"{c[0]}"'
                for c in columns
            )
            con.execute(f'create schema if not exists "{schema}"')
            source = f"read_parquet('{files}')"
            con.execute(f'create table "{schema}"."{name}" as select {select} from {source}')
            created.append(f"{schema}.{name}")
    return created
