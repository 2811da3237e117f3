"""Import clickstream files in the public REES46 format (CSV or Parquet) into raw.events.

The REES46 columns are `event_time, event_type, product_id, category_id, category_code, brand,
price, user_id, user_session` (`event_time` like `2019-10-01 00:00:04 UTC`). Every data row
becomes either one raw.events row or one raw.rejects row, never nothing:

- event_id is `rees46:<file name>:<line>`: the physical line for CSV (the header is line 1, so
  the first event is line 2), the 1-based row number for Parquet. Importing the same file twice
  gives the same ids, which staging deduplicates.
- a row with a value that cannot be cast (a timestamp, id or price that does not parse) goes to
  raw.rejects with the reason and the original fields as a JSON payload. Values that cast but
  are unusable (unknown event type, missing user) are loaded and quarantined by dbt staging.
- event types are kept as they are (view, cart, remove_from_cart, purchase); staging maps them.

The whole import is one transaction on a short-lived write connection.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shoplens import warehouse

REES46_COLUMNS = (
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
)
BATCH_ROWS = 500_000


class Rees46FormatError(ValueError):
    """A file that is not in the REES46 format (missing columns, unknown file type)."""


@dataclass(frozen=True)
class ImportSummary:
    """What one import did."""

    files: int
    rows: int
    loaded: int
    rejected: int
    run_id: int

    def __str__(self) -> str:
        return (
            f"imported {self.files} file(s): {self.rows:,} rows, {self.loaded:,} loaded into "
            f"raw.events, {self.rejected:,} rejected to raw.rejects (run {self.run_id})"
        )


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise Rees46FormatError(f"{path.name}: unknown file type (expected .csv, .csv.gz or .parquet)")


def _check_columns(path: Path, names: Sequence[str]) -> None:
    missing = [c for c in REES46_COLUMNS if c not in names]
    if missing:
        raise Rees46FormatError(
            f"{path.name}: not a REES46 file, missing column(s) {', '.join(missing)}"
        )


def _as_strings(batch: pa.RecordBatch) -> pa.Table:
    """The REES46 columns of a batch as strings (timezone-aware times converted to UTC)."""
    arrays = []
    for name in REES46_COLUMNS:
        col = batch.column(batch.schema.get_field_index(name))
        if pa.types.is_timestamp(col.type) and col.type.tz is not None:
            col = col.cast(pa.timestamp(col.type.unit))  # stored as UTC instants
        arrays.append(col if pa.types.is_string(col.type) else pc.cast(col, pa.string()))
    return pa.Table.from_arrays(arrays, names=list(REES46_COLUMNS))


def _batches(path: Path) -> Iterator[tuple[pa.Table, int]]:
    """(string table, line number of its first row) for each batch of the file."""
    kind = _file_kind(path)
    if kind == "csv":
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=64 << 20),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in REES46_COLUMNS},
                strings_can_be_null=True,
            ),
        )
        _check_columns(path, reader.schema.names)
        first_line = 2  # line 1 is the header
        for batch in reader:
            yield _as_strings(batch), first_line
            first_line += batch.num_rows
    else:
        pfile = pq.ParquetFile(path)
        _check_columns(path, pfile.schema_arrow.names)
        first_row = 1
        for batch in pfile.iter_batches(batch_size=BATCH_ROWS, columns=list(REES46_COLUMNS)):
            yield _as_strings(batch), first_row
            first_row += batch.num_rows


# Cast the string fields; `bad` lists the fields whose non-empty value did not cast.
_TYPED_SQL = """
with b as (
    select
        _line,
        {strings},
        try_cast(regexp_replace(trim(event_time), '\\s*(UTC|Z|[+-]00(:?00)?)$', '')
                 as timestamp) as t_event_time,
        try_cast(nullif(trim(product_id), '') as bigint) as t_product_id,
        try_cast(nullif(trim(category_id), '') as bigint) as t_category_id,
        try_cast(nullif(trim(price), '') as double) as t_price,
        try_cast(nullif(trim(user_id), '') as bigint) as t_user_id
    from _rees46_batch
)
select
    *,
    concat_ws('; ',
        case when nullif(trim(event_time), '') is not null and t_event_time is null
             then 'event_time is not a timestamp' end,
        case when nullif(trim(product_id), '') is not null and t_product_id is null
             then 'product_id is not an integer' end,
        case when nullif(trim(category_id), '') is not null and t_category_id is null
             then 'category_id is not an integer' end,
        case when nullif(trim(price), '') is not null and t_price is null
             then 'price is not a number' end,
        case when nullif(trim(user_id), '') is not null and t_user_id is null
             then 'user_id is not an integer' end
    ) as bad
from b
"""

_INSERT_EVENTS_SQL = """
insert into raw.events (event_id, event_time, event_type, product_id, category_id,
                        category_code, brand, price, user_id, user_session, source, loaded_at)
select
    'rees46:' || ? || ':' || cast(_line as varchar),
    t_event_time,
    nullif(trim(event_type), ''),
    t_product_id,
    t_category_id,
    nullif(trim(category_code), ''),
    nullif(trim(brand), ''),
    t_price,
    t_user_id,
    nullif(trim(user_session), ''),
    'rees46',
    ?
from _rees46_typed
where bad = ''
"""

_INSERT_REJECTS_SQL = """
insert into raw.rejects (rejected_at, source, topic, partition, kafka_offset, payload, reason)
select
    ?,
    'rees46',
    ?,
    null,
    _line,
    encode(to_json(struct_pack({fields}))::varchar),
    bad
from _rees46_typed
where bad <> ''
"""


def load_rees46(db: str | Path, files: Sequence[str | Path]) -> ImportSummary:
    """Import REES46 CSV/Parquet files into raw.events (and raw.rejects); one transaction."""
    paths = [Path(f) for f in files]
    if not paths:
        raise Rees46FormatError("no files given")
    for path in paths:
        if not path.is_file():
            raise Rees46FormatError(f"file not found: {path}")
        _file_kind(path)
    strings = ", ".join(REES46_COLUMNS)
    fields = ", ".join(f"{c} := {c}" for c in REES46_COLUMNS)
    rows = loaded = rejected = 0
    with warehouse.connect(db) as con:
        warehouse.ensure_raw_schema(con)
        con.execute("begin transaction")
        try:
            [(loaded_at,)] = con.execute("select now()::timestamp").fetchall()
            run_id = warehouse.start_run(con, "rees46", {"files": [p.name for p in paths]})
            for path in paths:
                for table, first_line in _batches(path):
                    lines = pa.array(range(first_line, first_line + table.num_rows), pa.int64())
                    batch = table.append_column("_line", lines)
                    con.register("_rees46_batch", batch)
                    con.execute(
                        "create or replace temp table _rees46_typed as "
                        + _TYPED_SQL.format(strings=strings)
                    )
                    [(n_ok, n_bad)] = con.execute(
                        "select count(*) filter (where bad = ''), count(*) filter "
                        "(where bad <> '') from _rees46_typed"
                    ).fetchall()
                    con.execute(_INSERT_EVENTS_SQL, [path.name, loaded_at])
                    con.execute(_INSERT_REJECTS_SQL.format(fields=fields), [loaded_at, path.name])
                    con.unregister("_rees46_batch")
                    rows += table.num_rows
                    loaded += n_ok
                    rejected += n_bad
            con.execute("drop table if exists _rees46_typed")
            con.execute("commit")
        except (duckdb.Error, pa.ArrowInvalid) as exc:
            con.execute("rollback")
            raise Rees46FormatError(f"import failed, nothing loaded: {exc}") from exc
        except BaseException:
            con.execute("rollback")
            raise
    return ImportSummary(
        files=len(paths), rows=rows, loaded=loaded, rejected=rejected, run_id=run_id
    )
