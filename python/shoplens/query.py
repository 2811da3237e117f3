"""`shoplens sql`: ad-hoc queries that can only read the warehouse, printed as plain data.

The connection is read-only, and DuckDB's `enable_external_access` is turned off and the
configuration locked: `copy ... to`, `export database`, `attach`, `install` / `load` of
extensions and reading any file other than the warehouse (`read_csv`, `read_parquet`, `glob`...)
are refused, and no `set` can turn them back on. Temporary tables are allowed; they live in
memory and vanish when the command ends.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from typing import IO, Any

import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

# What DuckDB says when the sandbox refuses a statement (duckdb 2.0 wording).
REFUSALS = (
    "file system operations are disabled by configuration",
    "external extensions is disabled",
    "attached in read-only mode",
    "the configuration has been locked",
    "in read-only mode",
)

# Characters that would act on a terminal instead of showing: C0 and C1 controls (ESC starts
# ANSI and OSC sequences), DEL, line and paragraph separators, and the bidirectional controls
# that reorder what is shown.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """Turn off every file access beyond the open warehouse and lock the configuration."""
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def is_refusal(exc: duckdb.Error) -> bool:
    """True when DuckDB refused `exc`'s statement because the connection is read-only."""
    return any(marker in str(exc) for marker in REFUSALS)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any) -> str:
    """`value` as terminal-safe text: None is empty, control characters are shown escaped
    (`\\x1b`, `\\n`, `\\u202e`); everything else, brackets included, is kept as it is."""
    return "" if value is None else _UNSAFE.sub(_escape, str(value))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], file: IO[str]) -> None:
    """Print a result as a table: no markup, emoji or highlighting is applied to the data, and
    long values wrap instead of being cut off. Off a terminal the table is never wrapped."""
    console = Console(file=file, highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console.width = 1_000_000
    table = Table()
    for name in columns:
        table.add_column(Text(printable(name)), overflow="fold")
    for row in rows:
        table.add_row(*(Text(printable(v)) for v in row))
    console.print(table)


def write_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], file: IO[str]) -> None:
    """Write a result as CSV (RFC 4180 quoting); NULL is an empty field, values are unchanged."""
    writer = csv.writer(file)
    writer.writerow(columns)
    writer.writerows(("" if v is None else v for v in row) for row in rows)
