"""Scoring in batches: a relation is read from DuckDB a batch of rows at a time, each batch is
scored and handed on as Arrow, so peak memory follows the batch size, not the table.

A dbt Python model that returns the `stream` reader has it written batch by batch (dbt-duckdb
registers the returned object with DuckDB and creates the table from it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import duckdb
import pandas as pd
import pyarrow as pa

# Rows per batch: about 250k sessions of ~30 features is some 100 MB in pandas.
BATCH_ROWS = 250_000


def arrow_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a frame typed as DuckDB's `.df()` types the same rows (DuckDB converts
    it: decimals as floats, integers with nulls as nullable integers)."""
    convert = duckdb.connect()
    try:
        return convert.from_arrow(table).df()
    finally:
        convert.close()


def read_batches(relation: duckdb.DuckDBPyRelation, batch_rows: int) -> Iterator[pd.DataFrame]:
    """The rows of `relation`, in its order, `batch_rows` at a time, each batch typed as
    `relation.df()` would type it (arrow_frame)."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    for batch in relation.to_arrow_reader(batch_rows):
        if batch.num_rows:
            yield arrow_frame(pa.Table.from_batches([batch]))


def stream(frames: Iterable[pd.DataFrame], schema: pa.Schema) -> pa.RecordBatchReader:
    """`frames` as one Arrow stream of `schema` (each frame's columns taken in schema order),
    converted lazily: a frame is produced only when the reader asks for the next batch."""

    def batches() -> Iterator[pa.RecordBatch]:
        for frame in frames:
            yield pa.RecordBatch.from_pandas(
                frame[schema.names], schema=schema, preserve_index=False
            )

    return pa.RecordBatchReader.from_batches(schema, batches())
