"""`BatchHook`: what else a batch writes in its transaction (the live scorer implements it)."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa


class BatchHook:
    """Extension point called around each batch write (the live scorer implements it)."""

    def prepare(self, rows: dict[str, pa.Table]) -> Any:
        """Compute what to write with the batch (after the batch before it was written,
        before this batch's transaction begins)."""
        return None

    def write(self, con: duckdb.DuckDBPyConnection, prepared: Any) -> None:
        """Write inside the batch's transaction."""

    def committed(self, prepared: Any) -> None:
        """Act after the transaction committed (e.g. publish alerts)."""

    def close(self) -> None:
        """Release resources."""
