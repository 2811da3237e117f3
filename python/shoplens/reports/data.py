"""Read-only access to the warehouse for the report pages.

Every query goes through one read-only DuckDB connection. Pages ask `ReportData.lacks(...)`
(through `pages.guarded`) before they query, so a warehouse without some tables or rows (no
streaming run yet, REES46 data without demographics, no `dbt build` at all) gives "no data
yet" notices instead of errors. dbt's test results and source freshness come from the
`ops` tables dbt's on-run-end hook writes into the same warehouse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from shoplens.warehouse import connect

# Written by the dbt on-run-end hook (macros/store_run_results.sql) into the warehouse dbt ran
# against: the report reads a warehouse's own runs, never a target/ folder.
DBT_RUNS = "ops.dbt_runs"
DBT_NODE_RESULTS = "ops.dbt_node_results"
DBT_SOURCE_FRESHNESS = "ops.dbt_source_freshness"


@dataclass(frozen=True)
class BuildInfo:
    """When the data ends and when the warehouse was last built, each with where it came from."""

    data_as_of: dt.datetime | None
    data_as_of_source: str
    built_at: dt.datetime | None
    built_at_source: str


class ReportData:
    """A read-only view of the warehouse: table existence checks and queries to DataFrames."""

    def __init__(self, con: duckdb.DuckDBPyConnection, db: Path) -> None:
        self.con = con
        self.db = db
        rows = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "where database_name = current_database() "
            "union all select schema_name || '.' || view_name from duckdb_views() "
            "where database_name = current_database() and not internal"
        ).fetchall()
        self._relations = {r[0].lower() for r in rows}
        self._empty: dict[str, bool] = {}

    def exists(self, relation: str) -> bool:
        """True when `schema.name` is a table or view in the warehouse."""
        return relation.lower() in self._relations

    def is_empty(self, relation: str) -> bool:
        """True when the relation exists and has no rows (cached)."""
        key = relation.lower()
        if key not in self._empty:
            self._empty[key] = self.scalar(f"select not exists (select 1 from {relation})")
        return self._empty[key]

    def missing(self, *relations: str) -> str | None:
        """Why the relations cannot be shown (missing or empty), or None when all have rows."""
        absent = [r for r in relations if not self.exists(r)]
        if absent:
            return f"{', '.join(absent)} not in the warehouse yet"
        empty = [r for r in relations if self.is_empty(r)]
        if empty:
            return f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty"
        return None

    def lacks(self, needs: Mapping[str, Sequence[str]]) -> str | None:
        """Why a section cannot be drawn: a relation missing or empty, or columns it lacks."""
        reason = self.missing(*needs)
        if reason:
            return reason
        for relation, wanted in needs.items():
            have = set(self.columns(relation))
            absent = [c for c in wanted if c not in have]
            if absent:
                return f"{relation} has no column {', '.join(absent)}"
        return None

    def columns(self, relation: str) -> list[str]:
        """Column names of a relation, in order."""
        schema, name = relation.split(".", 1)
        return [
            r[0]
            for r in self.con.execute(
                "select column_name from duckdb_columns() where database_name = current_database() "
                "and schema_name = ? and table_name = ? order by column_index",
                [schema, name],
            ).fetchall()
        ]

    def df(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a query and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def scalar(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """Run a query and return the first column of its first row (None when no rows)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def build_info(self) -> BuildInfo:
        """The data's "as of" time (latest session or event) and the last warehouse build."""
        as_of, as_of_source = None, "no events yet"
        for relation, column in (
            ("marts.fct_sessions", "session_start"),
            ("marts.fct_events", "event_time"),
            ("raw.events", "event_time"),
        ):
            if self.exists(relation) and column in self.columns(relation):
                as_of = self.scalar(f"select max({column}) from {relation}")
                if as_of is not None:
                    as_of_source = f"latest {column} in {relation}"
                    break
        built_at, built_source = None, "no dbt build found"
        if self.exists(DBT_RUNS):
            built_at = self.scalar(
                f"select max(finished_at) from {DBT_RUNS} where command in ('build', 'run')"
            )
            if built_at is not None:
                built_source = f"latest dbt build or run recorded in {DBT_RUNS}"
        if built_at is None and self.exists("marts.fct_sessions"):
            built_at = dt.datetime.fromtimestamp(self.db.stat().st_mtime, dt.UTC).replace(
                tzinfo=None
            )
            built_source = "warehouse file last modified"
        return BuildInfo(as_of, as_of_source, built_at, built_source)


@contextmanager
def open_report_data(db: Path) -> Iterator[ReportData]:
    """Open the warehouse read-only for the duration of a report build."""
    with connect(db, read_only=True) as con:
        yield ReportData(con, db)
