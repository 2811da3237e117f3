"""The writer: validates and writes batches through a `SinkStore`, in two threads, so that the
validation of one batch overlaps the write of the one before."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import duckdb

from shoplens.stream.sink.buffer import Batch
from shoplens.stream.sink.errors import WarehouseBusy, WriteAbandoned
from shoplens.stream.sink.store import PreparedBatch, SinkStore, WriteResult

# While working off a backlog the writer keeps the file open across batches for at most this
# long, then releases it (dbt-duckdb retries its connect after 1, 2, 4... s).
HOLD_SECONDS = 1.0
# After a full batch (a backlog sign) the writer waits this long for the next one with the
# file still open; otherwise, and after this, it releases the file.
LINGER_SECONDS = 0.1


class Writer:
    """Validates and writes one batch after another, one transaction per batch.

    Two threads: the validation thread runs the contract over a batch while the write thread
    writes the batch before it (DuckDB releases the GIL, so the consumer keeps fetching
    meanwhile). Batches are written in the order they were submitted, and the hook prepares
    each one after the previous one was written. The write thread opens the file as soon as
    a full batch is being validated (opening overlaps validating), keeps its connection across
    back-to-back batches (after a full one, or any one whose successor is already handed over)
    for up to HOLD_SECONDS and releases the file otherwise; while the file is held elsewhere
    it retries with back-off.

    The consumer side `submit`s a batch when the writer is `ready` (the validation thread is
    free: at most one batch is validated while another is written), waits with `wait_ready`,
    and collects the `results`; `busy` says whether any batch is still in the writer.
    `report` gets progress lines and `on_lock_wait` is called each time a wait for the file
    begins.
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
        self._changed = threading.Condition(self._lock)
        self._submitted: Batch | None = None  # waiting for or in validation
        self._validated: PreparedBatch | WriteResult | None = None  # waiting for the write
        self._writing = False
        self._results: list[WriteResult] = []
        self._closing = False
        self.abandon = threading.Event()
        self.waiting_since: float | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._held_since = 0.0
        self._threads = [
            threading.Thread(
                target=self._validate_loop, name="shoplens-sink-validate", daemon=True
            ),
            threading.Thread(target=self._write_loop, name="shoplens-sink-writer", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def busy(self) -> bool:
        """A batch is being validated, waits to be written or is being written."""
        with self._lock:
            return self._submitted is not None or self._validated is not None or self._writing

    @property
    def ready(self) -> bool:
        """A batch can be submitted now (the validation thread is free)."""
        with self._lock:
            return self._submitted is None

    def wait_ready(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds until a batch can be submitted; whether it can."""
        with self._lock:
            return self._changed.wait_for(lambda: self._submitted is None, timeout)

    def submit(self, batch: Batch) -> None:
        with self._lock:
            if self._submitted is not None:
                raise RuntimeError("writer busy")
            self._submitted = batch
            self._changed.notify_all()

    def adopt(self, con: duckdb.DuckDBPyConnection) -> None:
        """Take a connection to the warehouse opened by the consumer side as the writer's
        own, unless it holds one (then `con` is closed). It is released like the writer's own:
        after LINGER_SECONDS with no batch on its way."""
        with self._lock:
            if self._con is None and not self._closing:
                self._con, self._held_since = con, time.monotonic()
                self._changed.notify_all()
                return
        con.close()

    def results(self) -> list[WriteResult]:
        with self._lock:
            out, self._results = self._results, []
        return out

    def close(self) -> None:
        """Finish the batches already submitted, then stop both threads."""
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()

    # ---------------------------------------------------------------- validation thread

    def _validate_loop(self) -> None:
        while True:
            with self._lock:
                self._changed.wait_for(lambda: self._submitted is not None or self._closing)
                batch = self._submitted
            if batch is None:
                break
            checked: PreparedBatch | WriteResult
            try:
                checked = self.store.validate(batch)
            except Exception as exc:  # handed to the consumer thread, which re-raises
                checked = WriteResult(batch, error=exc)
            with self._lock:
                # One batch waits for the write thread at most.
                self._changed.wait_for(lambda: self._validated is None)
                self._validated, self._submitted = checked, None
                self._changed.notify_all()
        with self._lock:  # the write thread stops once nothing is left for it
            self._changed.notify_all()

    # ---------------------------------------------------------------- write thread

    def _validation_done(self) -> bool:
        """Nothing more will come from the validation thread (closing, nothing submitted)."""
        return self._closing and self._submitted is None and self._validated is None

    def _next(self) -> PreparedBatch | WriteResult | None:
        """The next validated batch (None when closing). While a full batch is being
        validated the file is opened (or kept); it is released while none is coming."""
        while True:
            with self._lock:
                if self._validated is None and self._con is not None:
                    # Keep the file while a batch is on its way, LINGER_SECONDS otherwise.
                    self._changed.wait_for(
                        lambda: self._validated is not None or self._validation_done(),
                        None if self._submitted is not None else LINGER_SECONDS,
                    )
                if self._validated is None and self._submitted is None:
                    release = self._con is not None
                else:
                    release = False
            if release:
                self._release()
            with self._lock:
                self._changed.wait_for(
                    lambda: (
                        self._validated is not None
                        or self._validation_done()
                        or self._open_early_due()
                        # an adopted connection, and nothing on its way: linger, then release
                        or (self._con is not None and self._submitted is None)
                    )
                )
                if self._validated is not None:
                    checked, self._validated = self._validated, None
                    self._writing = True
                    self._changed.notify_all()
                    return checked
                if self._validation_done():
                    return None
                if not self._open_early_due():
                    continue
            self._open_early()

    def _open_early_due(self) -> bool:
        """A full batch (a backlog) is being validated and the file is not open: open it now.
        A batch of a quiet stream does not: the file stays free for others meanwhile."""
        return self._submitted is not None and self._submitted.full and self._con is None

    def _open_early(self) -> None:
        """Open the file while a batch is validated. If that fails (the file is held, or
        anything else) the write opens it, and waits or reports the error."""
        try:
            self._connection()
        except Exception:
            with self._lock:
                self._changed.wait_for(
                    lambda: self._validated is not None or self._validation_done()
                )

    def _write_loop(self) -> None:
        try:
            while (checked := self._next()) is not None:
                result = checked if isinstance(checked, WriteResult) else self._write(checked)
                result.done_at = time.monotonic()
                with self._lock:
                    self._results.append(result)
                    self._writing = False
                    self._changed.notify_all()
                    # A batch already handed over: the stream is not quiet, whatever the size
                    # of this one (releasing would cost a checkpoint now and an open for it).
                    backlog = self._submitted is not None or self._validated is not None
                if (
                    not (result.batch.full or backlog)
                    or result.error is not None
                    or result.stale
                    or time.monotonic() - self._held_since >= HOLD_SECONDS
                ):
                    self._release()
        finally:
            self._release()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """The writer's connection, opened if needed (raises WarehouseBusy)."""
        if self._con is not None:
            return self._con
        con = self.store.open()
        with self._lock:  # `adopt` may have given it one meanwhile
            if self._con is None:
                self._con, self._held_since = con, time.monotonic()
                return con
            held = self._con
        con.close()
        return held

    def _release(self) -> None:
        """Close the writer's connection, if open: the file is free for other processes."""
        if self._con is not None:
            con, self._con = self._con, None
            con.close()

    def _write(self, prepared: PreparedBatch) -> WriteResult:
        try:
            self.store.prepare_hook(prepared)
        except Exception as exc:  # handed to the consumer thread, which re-raises
            return WriteResult(prepared.batch, error=exc)
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
                        prepared.batch, error=WriteAbandoned("gave up waiting for the warehouse")
                    )
                delay = min(delay * 2, 0.5)
            except Exception as exc:  # handed to the consumer thread, which re-raises
                return WriteResult(prepared.batch, error=exc)
