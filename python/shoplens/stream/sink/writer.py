"""The writer thread: validates and writes one batch at a time through a `SinkStore`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import duckdb

from shoplens.stream.sink.buffer import Batch
from shoplens.stream.sink.errors import WarehouseBusy, WriteAbandoned
from shoplens.stream.sink.store import SinkStore, WriteResult

# While working off a backlog the writer keeps the file open across batches for at most this
# long, then releases it (dbt-duckdb retries its connect after 1, 2, 4... s).
HOLD_SECONDS = 1.0
# After a full batch (a backlog sign) the writer waits this long for the next one with the
# file still open; otherwise, and after this, it releases the file.
LINGER_SECONDS = 0.1


class Writer:
    """A thread that validates and writes one batch at a time (DuckDB releases the GIL, so
    the consumer keeps fetching meanwhile), one transaction per batch. It keeps its
    connection across back-to-back full batches for up to HOLD_SECONDS and releases the file
    otherwise; while the file is held elsewhere it retries with back-off.

    The consumer side `submit`s a batch when the writer is not `busy` and collects the
    `results`; `report` gets progress lines and `on_lock_wait` is called each time a wait for
    the file begins.
    """

    def __init__(
        self,
        store: SinkStore,
        report: Callable[[str], None],
        on_lock_wait: Callable[[], None],
    ) -> None:
        self.store = store
        self.report = report
        self.on_lock_wait = on_lock_wait
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._batch: Batch | None = None
        self._results: list[WriteResult] = []
        self._closing = False
        self.abandon = threading.Event()
        self.waiting_since: float | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._held_since = 0.0
        self._thread = threading.Thread(target=self._loop, name="shoplens-sink-writer", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._batch is not None

    def submit(self, batch: Batch) -> None:
        with self._lock:
            if self._batch is not None:
                raise RuntimeError("writer busy")
            self._batch = batch
            self._work.notify()

    def results(self) -> list[WriteResult]:
        with self._lock:
            out, self._results = self._results, []
        return out

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._work.notify()
        self._thread.join()

    def _next(self) -> Batch | None:
        """The next batch (None when closing); the file is released while none is waiting."""
        with self._lock:
            if self._batch is None and not self._closing and self._con is not None:
                self._work.wait(LINGER_SECONDS)
            batch = self._batch
        if batch is None:
            self._release()
            with self._lock:
                while self._batch is None and not self._closing:
                    self._work.wait()
                batch = self._batch
        return batch

    def _loop(self) -> None:
        try:
            while (batch := self._next()) is not None:
                result = self._write_with_retry(batch)
                result.done_at = time.monotonic()
                with self._lock:
                    self._results.append(result)
                    self._batch = None
                if (
                    not batch.full
                    or result.error is not None
                    or result.stale
                    or time.monotonic() - self._held_since >= HOLD_SECONDS
                ):
                    self._release()
        finally:
            self._release()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """The writer's connection, opened if needed (raises WarehouseBusy)."""
        if self._con is None:
            self._con = self.store.open()
            self._held_since = time.monotonic()
        return self._con

    def _release(self) -> None:
        """Close the writer's connection, if open: the file is free for other processes."""
        if self._con is not None:
            con, self._con = self._con, None
            con.close()

    def _write_with_retry(self, batch: Batch) -> WriteResult:
        try:
            prepared = self.store.prepare(batch)
        except Exception as exc:  # handed to the consumer thread, which re-raises
            return WriteResult(batch, error=exc)
        delay = 0.02
        while True:
            try:
                result = self.store.write(self._connection(), prepared)
                if self.waiting_since is not None:
                    self.report(
                        f"sink: warehouse free again after "
                        f"{time.monotonic() - self.waiting_since:.1f} s"
                    )
                    self.waiting_since = None
                return result
            except WarehouseBusy:
                if self.waiting_since is None:
                    self.waiting_since = time.monotonic()
                    self.on_lock_wait()
                    self.report(
                        "sink: warehouse busy (another process holds it); "
                        "retrying while Kafka buffers"
                    )
                if self.abandon.wait(delay):
                    return WriteResult(
                        batch, error=WriteAbandoned("gave up waiting for the warehouse")
                    )
                delay = min(delay * 2, 0.5)
            except Exception as exc:  # handed to the consumer thread, which re-raises
                return WriteResult(batch, error=exc)
