"""The DuckDB warehouse file: connections that wait politely for the lock, and the raw schema.

DuckDB lets one process at a time hold a database file for writing (and a writer excludes
readers from other processes). Every writer here is short-lived and every connection retries
with back-off while another process (a `dbt build`, the Kafka sink) holds the file.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa


class WarehouseError(Exception):
    """A problem with the warehouse file that the user can act on (missing, locked...)."""


# The last one: this process already has the file open with another configuration (a
# read-only reader beside the sink's writer, in a program that embeds both): held until it closes.
LOCK_MARKERS = (
    "Could not set lock",
    "Conflicting lock",
    "database is locked",
    "with a different configuration than existing connections",
)


def is_lock_error(exc: BaseException) -> bool:
    """True when DuckDB refused the file because another process, or another connection of
    this one, holds it."""
    return isinstance(exc, duckdb.Error) and any(m in str(exc) for m in LOCK_MARKERS)


LOCK_TIMEOUT_ENV = "SHOPLENS_LOCK_TIMEOUT"
# Schemas of the warehouse. A file named after one of them (raw.duckdb) would make `raw.events`
# ambiguous, because DuckDB names the database (catalog) after the file's stem.
SCHEMAS = (
    "raw",
    "ground_truth",
    "reference",
    "staging",
    "intermediate",
    "marts",
    "ml",
    "live",
    "ops",
)


def default_lock_timeout() -> float:
    """Seconds to wait for a locked warehouse: `$SHOPLENS_LOCK_TIMEOUT`, else 30.

    The value must be a finite number >= 0: `nan` or `inf` would wait forever.
    """
    value = os.environ.get(LOCK_TIMEOUT_ENV)
    if not value:
        return 30.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise WarehouseError(
            f"{LOCK_TIMEOUT_ENV} must be a finite number of seconds >= 0, not {value!r}"
        )
    return seconds


DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


def check_warehouse_path(db: str | Path) -> None:
    """Refuse a warehouse path that is neither a DuckDB file nor a new path.

    DuckDB 2.0 opens an existing file named *.csv, *.parquet, *.json or *.csv.gz as an
    in-memory database over that data: everything written would be thrown away. So an existing
    path must be a DuckDB database file (magic bytes `DUCK` at offset 8); a path that does not
    exist yet is a new warehouse.
    """
    path = Path(db)
    if not path.exists():
        return
    if not path.is_file():
        raise WarehouseError(f"warehouse {path} is not a file (a DuckDB file or a new path)")
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as exc:
        raise WarehouseError(f"cannot read warehouse {path}: {exc.strerror or exc}") from exc
    if head[8:12] != DUCKDB_MAGIC:
        raise WarehouseError(
            f"warehouse {path} exists but is not a DuckDB database (a data file?): pass a "
            "DuckDB file or a new path"
        )


def open_connection(
    db: str | Path,
    *,
    read_only: bool = False,
    timeout: float | None = None,
    create: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, retrying with back-off for up to `timeout` s while it is locked.

    `timeout` defaults to `default_lock_timeout()`. Read-only connections and `create=False`
    require the file to exist already.
    """
    if timeout is None:
        timeout = default_lock_timeout()
    path = Path(db)
    if path.stem in SCHEMAS:
        raise WarehouseError(
            f"warehouse file name {path.name} clashes with the schema {path.stem!r} "
            "(DuckDB names the database after the file): choose another name"
        )
    if (read_only or not create) and not path.exists():
        raise WarehouseError(
            f"warehouse file not found: {path} (run `shoplens generate` or set SHOPLENS_DB)"
        )
    check_warehouse_path(path)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if not is_lock_error(exc):
                raise WarehouseError(f"cannot open warehouse {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise WarehouseError(
                    f"warehouse {path} is locked by another process or connection "
                    f"(a dbt build or the sink?); gave up after {timeout:.0f} s"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


@contextmanager
def connect(
    db: str | Path,
    *,
    read_only: bool = False,
    timeout: float | None = None,
    create: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Context manager around `open_connection` that always closes (and so releases) the file."""
    con = open_connection(db, read_only=read_only, timeout=timeout, create=create)
    try:
        yield con
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# Raw schema: the contract every loader (generator, Kafka sink, REES46 import) writes to.
# Each entry: table -> (table comment, [(column, type, comment), ...]).
# --------------------------------------------------------------------------------------------

RAW_TABLES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "raw.events": (
        "One row per behavioural event, a superset of the public REES46 clickstream schema. "
        "Append-only landing table: duplicates, late events and defects are cleaned by dbt.",
        [
            (
                "event_id",
                "VARCHAR",
                "Unique event id across all loads: '<run tag>-<n>' for "
                "generated events, the producer's id for streamed ones, "
                "'rees46:<content digest>:<line>' for imports",
            ),
            ("event_time", "TIMESTAMP", "When the event happened, UTC"),
            (
                "event_type",
                "VARCHAR",
                "page_view, product_view, add_to_cart, remove_from_cart, "
                "checkout or purchase (REES46 imports keep their own view/cart/... values)",
            ),
            ("product_id", "BIGINT", "Product the event is about; null for page views"),
            ("category_id", "BIGINT", "Category id of the product (REES46 field)"),
            (
                "category_code",
                "VARCHAR",
                "Dotted category code, top level first, e.g. 'electronics.audio'",
            ),
            ("brand", "VARCHAR", "Product brand"),
            ("price", "DOUBLE", "Unit price at the time of the event"),
            ("user_id", "BIGINT", "Customer id (REES46 user_id)"),
            (
                "user_session",
                "VARCHAR",
                "Session id; may be missing, then dbt sessionises by 30 minutes of inactivity",
            ),
            ("quantity", "INTEGER", "Units added, removed or bought; null for views"),
            ("device", "VARCHAR", "desktop, mobile or tablet"),
            (
                "traffic_source",
                "VARCHAR",
                "direct, organic, paid_search, social, email or referral",
            ),
            (
                "page",
                "VARCHAR",
                "Page type for page views: home, search, category, cart, account, help",
            ),
            ("source", "VARCHAR", "Which loader wrote the row: generator, kafka or rees46"),
            (
                "loaded_at",
                "TIMESTAMP",
                "When the row was written to the warehouse, UTC; drives source freshness and "
                "incremental builds",
            ),
        ],
    ),
    "raw.customers": (
        "One row per customer as registered by the shop (generated or imported).",
        [
            ("customer_id", "BIGINT", "Customer id, joins raw.events.user_id"),
            ("age", "INTEGER", "Age in years; may be missing"),
            ("gender", "VARCHAR", "F, M or X; may be missing"),
            ("city", "VARCHAR", "City of residence"),
            ("country", "VARCHAR", "Country of residence"),
            ("signup_date", "DATE", "When the customer registered"),
            ("source", "VARCHAR", "Which loader wrote the row"),
            ("loaded_at", "TIMESTAMP", "When the row was written, UTC"),
        ],
    ),
    "raw.products": (
        "One row per product in the catalogue.",
        [
            ("product_id", "BIGINT", "Product id, joins raw.events.product_id"),
            ("product_name", "VARCHAR", "Display name"),
            ("category_id", "BIGINT", "Category id"),
            ("category_code", "VARCHAR", "Dotted category code, top level first"),
            ("brand", "VARCHAR", "Brand"),
            ("price", "DOUBLE", "List price"),
            ("source", "VARCHAR", "Which loader wrote the row"),
            ("loaded_at", "TIMESTAMP", "When the row was written, UTC"),
        ],
    ),
    "raw.transactions": (
        "Order lines as the order system records them: one row per product bought. Each "
        "follows from a purchase event (same event_id).",
        [
            ("transaction_id", "VARCHAR", "Order line id, unique"),
            ("order_id", "VARCHAR", "Order id: the lines bought together in one checkout"),
            ("event_id", "VARCHAR", "The purchase event this line comes from"),
            ("customer_id", "BIGINT", "Buyer"),
            ("product_id", "BIGINT", "Product bought"),
            ("category_code", "VARCHAR", "Category code of the product"),
            ("price", "DOUBLE", "Unit price paid"),
            ("quantity", "INTEGER", "Units bought"),
            ("transaction_time", "TIMESTAMP", "When the order was placed, UTC"),
            ("source", "VARCHAR", "Which loader wrote the row"),
            ("loaded_at", "TIMESTAMP", "When the row was written, UTC"),
        ],
    ),
    "raw.rejects": (
        "Input that could not be accepted, kept whole with the reason: nothing is dropped "
        "silently. Written by the Kafka sink and the file importers.",
        [
            ("rejected_at", "TIMESTAMP", "When it was rejected, UTC"),
            ("source", "VARCHAR", "kafka or the importer's format (rees46)"),
            ("topic", "VARCHAR", "Kafka topic, or the file's path for imports"),
            ("partition", "INTEGER", "Kafka partition; null for imports"),
            ("kafka_offset", "BIGINT", "Kafka offset, or the line number for imports"),
            (
                "payload",
                "BLOB",
                "The raw bytes as received (imports: the original line; Parquet: the fields "
                "as JSON)",
            ),
            ("reason", "VARCHAR", "Why it was rejected"),
        ],
    ),
    "raw.sink_offsets": (
        "Next Kafka offset to read per consumer group, topic and partition, written in the "
        "same transaction as the rows: the sink's exactly-once bookkeeping.",
        [
            ("consumer_group", "VARCHAR", "Kafka consumer group of the sink"),
            ("topic", "VARCHAR", "Topic"),
            ("partition", "INTEGER", "Partition"),
            ("next_offset", "BIGINT", "First offset not yet written to the warehouse"),
            ("updated_at", "TIMESTAMP", "Last commit, UTC"),
        ],
    ),
    "raw.sink_gaps": (
        "Kafka offsets the broker deleted (retention) before the sink read them: messages "
        "that never reached the warehouse. Written in the same transaction as the offsets "
        "that move past them.",
        [
            ("consumer_group", "VARCHAR", "Sink name (consumer group) that found the gap"),
            ("topic", "VARCHAR", "Kafka topic"),
            ("partition", "INTEGER", "Kafka partition"),
            ("first_offset", "BIGINT", "First missing offset"),
            ("last_offset", "BIGINT", "Last missing offset (inclusive)"),
            ("detected_at", "TIMESTAMP", "When the sink found the gap, UTC"),
        ],
    ),
    "raw.load_runs": (
        "One row per load (generate run, import, sink start): what was loaded and with which "
        "parameters.",
        [
            ("run_id", "INTEGER", "Sequential run id"),
            ("kind", "VARCHAR", "generate, rees46, kafka..."),
            ("started_at", "TIMESTAMP", "Start, UTC"),
            ("params", "VARCHAR", "Parameters as JSON"),
        ],
    ),
    "ground_truth.customer_personas": (
        "EVALUATION ONLY: the latent behaviour persona the generator gave each customer. "
        "Never a feature; used only to check that segmentation recovers the design.",
        [
            ("customer_id", "BIGINT", "Customer id"),
            (
                "persona",
                "VARCHAR",
                "browser, cart_abandoner, one_click_buyer, explorer or ordinary",
            ),
        ],
    ),
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# How new raw tables store some columns (the contract above is names and types; this is not
# checked). Event ids are unique text, which DuckDB's default string compression (dictionary +
# FSST) writes slowly; zstd writes them with less CPU into as few bytes (a REES46 import of 2M
# events: about 0.25 s less, 55 MB instead of 57 MB) and reads them as fast.
COLUMN_STORAGE: dict[tuple[str, str], str] = {("raw.events", "event_id"): "using compression zstd"}


def check_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a database whose existing raw tables are not shoplens's (other columns or types,
    or a view of that name), before anything is written: another application's DuckDB file
    must not be changed at all."""
    found: dict[str, dict[str, str]] = {}
    kinds: dict[str, str] = {}
    for schema, table, kind in con.execute(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_catalog = current_database()"
    ).fetchall():
        kinds[f"{schema}.{table}"] = kind
    for schema, table, column, dtype in con.execute(
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_catalog = current_database()"
    ).fetchall():
        found.setdefault(f"{schema}.{table}", {})[column] = dtype.upper()
    problems = []
    for table, (_, columns) in RAW_TABLES.items():
        if table not in kinds:
            continue
        if kinds[table] != "BASE TABLE":
            problems.append(f"{table} is a {kinds[table].lower()}, not a table")
            continue
        want = {name: dtype for name, dtype, _ in columns}
        have = found.get(table, {})
        missing = [c for c in want if c not in have]
        other = [c for c in have if c not in want]
        retyped = [f"{c} {have[c]}" for c in want if c in have and have[c] != want[c]]
        details = [
            f"{label} {', '.join(items)}"
            for label, items in (
                ("missing", missing),
                ("unexpected", other),
                ("wrong type", retyped),
            )
            if items
        ]
        if details:
            problems.append(f"{table} has other columns ({'; '.join(details)})")
    if problems:
        raise WarehouseError("not a shoplens warehouse, nothing written: " + "; ".join(problems))


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw and ground_truth schemas and tables (with comments) if missing.

    Existing raw tables must match the contract (`check_raw_schema`), checked before anything
    is created.
    """
    check_raw_schema(con)
    con.execute("create schema if not exists raw")
    con.execute("create schema if not exists ground_truth")
    existing = {
        f"{s}.{t}"
        for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = "
            "current_database()"
        ).fetchall()
    }
    for table, (comment, columns) in RAW_TABLES.items():
        if table in existing:
            continue
        cols = ", ".join(
            " ".join(filter(None, (name, dtype, COLUMN_STORAGE.get((table, name)))))
            for name, dtype, _ in columns
        )
        con.execute(f"create table {table} ({cols})")
        con.execute(f"comment on table {table} is {_quote(comment)}")
        for name, _, col_comment in columns:
            con.execute(f"comment on column {table}.{name} is {_quote(col_comment)}")


def raw_columns(table: str) -> list[str]:
    """Column names of a raw table, in contract order."""
    return [name for name, _, _ in RAW_TABLES[table][1]]


def append(
    con: duckdb.DuckDBPyConnection,
    table: str,
    data: pa.Table,
    *,
    loaded_at: dt.datetime | None = None,
) -> int:
    """Append an Arrow table to a raw table by column name (missing columns become null).

    `loaded_at`, when given, fills the `loaded_at` column of every row (naive UTC).
    """
    con.register("_shoplens_append", data)
    try:
        names = [c for c in raw_columns(table) if c in data.column_names]
        cols = ", ".join(names)
        if loaded_at is not None and "loaded_at" not in names:
            con.execute(
                f"insert into {table} ({cols}, loaded_at) "
                f"select {cols}, ?::timestamp from _shoplens_append",
                [loaded_at],
            )
        else:
            con.execute(f"insert into {table} ({cols}) select {cols} from _shoplens_append")
    finally:
        con.unregister("_shoplens_append")
    return data.num_rows


def start_run(con: duckdb.DuckDBPyConnection, kind: str, params: dict) -> int:
    """Record a load run and return its id (1, 2, ... per warehouse)."""
    [(run_id,)] = con.execute("select coalesce(max(run_id), 0) + 1 from raw.load_runs").fetchall()
    con.execute(
        "insert into raw.load_runs values (?, ?, now()::timestamp, ?)",
        [run_id, kind, json.dumps(params, sort_keys=True)],
    )
    return int(run_id)
