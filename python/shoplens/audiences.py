"""Campaign audiences: the dbt marts in models/marts/audiences, listed and exported for a
campaign tool (`shoplens audience list`, `shoplens audience export NAME --out FILE`).

The marts hold ids and behaviour only. An export adds personal data (age, gender, city...,
from marts.dim_customers) only when asked, and leaves out any mart column named like personal
data otherwise. The warehouse is opened read-only; the file is written beside its destination
and then moved into place, so a failed export leaves no partial file, and an existing file is
replaced only with `force`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import duckdb

from shoplens.warehouse import connect


class AudienceError(Exception):
    """An export the user can correct: unknown audience, format, existing file, no mart yet."""


@dataclass(frozen=True)
class Audience:
    """One audience mart: its relation, its grain (also the export's row order) and purpose."""

    name: str
    relation: str
    grain: tuple[str, ...]
    order_by: str
    description: str

    @property
    def has_customers(self) -> bool:
        """True when each row is a customer (personal data can be joined on)."""
        return self.grain == ("customer_id",)


AUDIENCES: dict[str, Audience] = {
    a.name: a
    for a in (
        Audience(
            "cart_abandoners",
            "marts.aud_cart_abandoners",
            ("customer_id",),
            "abandoned_value desc, customer_id",
            "Customers who left products in a cart in the last days and did not buy them since",
        ),
        Audience(
            "segment_members",
            "marts.aud_segment_members",
            ("customer_id",),
            "segment_name, customer_id",
            "Customers per segment with the segment's profile and suggested campaign",
        ),
        Audience(
            "time_promotions",
            "marts.aud_time_promotions",
            ("start_weekday", "start_hour", "category"),
            "promotion_rank",
            "Hour x weekday x category cells with high traffic and low conversion",
        ),
    )
}

# Personal data in marts.dim_customers: exported only with `with_personal_data`.
PERSONAL_COLUMNS = ("age", "age_band", "gender", "city", "country", "region", "signup_date")
CUSTOMERS = "marts.dim_customers"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    audience: str
    path: Path
    file_format: str
    rows: int
    columns: list[str]

    def summary(self) -> str:
        return (
            f"wrote {self.rows:,} rows of {self.audience} ({len(self.columns)} columns) "
            f"to {self.path} ({self.file_format})"
        )


def get_audience(name: str) -> Audience:
    """The audience called `name`, or AudienceError naming the known ones."""
    try:
        return AUDIENCES[name]
    except KeyError:
        raise AudienceError(
            f"unknown audience {name!r}: the audiences are {', '.join(sorted(AUDIENCES))}"
        ) from None


def file_format(out: Path, fmt: str | None) -> str:
    """`fmt` when given, else the format `out`'s extension names (csv or parquet)."""
    if fmt is not None:
        if fmt not in set(FORMATS.values()):
            raise AudienceError(f"unknown format {fmt!r}: use csv or parquet")
        return fmt
    try:
        return FORMATS[out.suffix.lower()]
    except KeyError:
        raise AudienceError(
            f"cannot tell the format of {out} from its extension: name it .csv or .parquet, "
            "or pass --format"
        ) from None


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    schema, table = relation.split(".")
    return [
        r[0]
        for r in con.execute(
            "select column_name from duckdb_columns() where database_name = current_database() "
            "and schema_name = ? and table_name = ? order by column_index",
            [schema, table],
        ).fetchall()
    ]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def export_query(
    con: duckdb.DuckDBPyConnection, audience: Audience, with_personal_data: bool
) -> tuple[str, list[str]]:
    """The SELECT an export writes and its column names."""
    columns = _columns(con, audience.relation)
    if not columns:
        raise AudienceError(
            f"{audience.relation} is not in the warehouse yet (run `dbt build` to create it)"
        )
    kept = [c for c in columns if c not in PERSONAL_COLUMNS]
    select = [f"a.{_ident(c)}" for c in kept]
    joins = ""
    if with_personal_data:
        if not audience.has_customers:
            raise AudienceError(
                f"{audience.name} has no customers: --with-personal-data does not apply"
            )
        personal = [c for c in PERSONAL_COLUMNS if c in _columns(con, CUSTOMERS)]
        select += [f"c.{_ident(c)}" for c in personal]
        kept += personal
        joins = f" left join {CUSTOMERS} as c on c.customer_id = a.customer_id"
    order = ", ".join(f"a.{part.strip()}" for part in audience.order_by.split(","))
    sql = f"select {', '.join(select)} from {audience.relation} as a{joins} order by {order}"
    return sql, kept


def audience_sizes(db: Path) -> dict[str, int | None]:
    """Rows per audience (None when its mart is not in the warehouse)."""
    sizes: dict[str, int | None] = {}
    with connect(db, read_only=True) as con:
        for audience in AUDIENCES.values():
            if _columns(con, audience.relation):
                [(rows,)] = con.execute(f"select count(*) from {audience.relation}").fetchall()
                sizes[audience.name] = rows
            else:
                sizes[audience.name] = None
    return sizes


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_audience(
    db: Path,
    name: str,
    out: Path,
    *,
    fmt: str | None = None,
    with_personal_data: bool = False,
    force: bool = False,
) -> ExportResult:
    """Write audience `name` to `out` as CSV (with a header) or Parquet; see the module doc."""
    audience = get_audience(name)
    file_fmt = file_format(out, fmt)
    if out.is_dir():
        raise AudienceError(f"{out} is a folder: --out takes a file name")
    if (out.exists() or out.is_symlink()) and not force:
        raise AudienceError(f"{out} exists: pass --force to overwrite it")
    if not out.parent.is_dir():
        raise AudienceError(f"folder {out.parent} does not exist")
    # A name of our own beside `out` (DuckDB creates it with the usual permissions), moved
    # into place once complete.
    tmp = out.parent / f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    options = "format csv, header true" if file_fmt == "csv" else "format parquet"
    with connect(db, read_only=True) as con:
        sql, columns = export_query(con, audience, with_personal_data)
        try:
            [(rows,)] = con.execute(
                f"copy ({sql}) to {_sql_string(str(tmp))} ({options})"
            ).fetchall()
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return ExportResult(audience.name, out, file_fmt, rows, columns)
