"""The exactly-once Kafka → DuckDB sink.

A consumer (`clients.SinkConsumer`: confluent-kafka) reads every partition of `ecommerce_events` and
`ecommerce_transactions` and micro-batches the raw payloads (by count and by time; while the
writer thread is busy the next batch keeps growing, so batches adapt to the load). Each batch
is validated in bulk (`contract.Validator`), then ONE DuckDB transaction writes the valid rows,
the rejects and the next offset of every partition in the batch to `raw.sink_offsets`. The
warehouse, not Kafka, is the source of truth for offsets: on start (and when a topic gains
partitions) the sink pauses the new partitions, reads their offsets from DuckDB and seeks there
before it accepts any record. A sink killed at any instant therefore re-reads exactly what it
had not committed.

The partitions are assigned by the sink, not by a Kafka consumer group: a DuckDB file has one
writer, so one sink per warehouse reads them all, and kafka-python 3.0's group join sometimes
stalled a sink's start for seconds to minutes (a range assignment made before the topic
metadata arrived, an event-loop task blocked after the offset fetch).

Before writing, the transaction checks that the stored offsets are still the ones this sink
last saw; if another sink under the same name wrote those partitions meanwhile (two started by
mistake) the batch is rolled back and the partitions are re-read from the stored offsets. The
writer releases the file after each batch while the stream is quiet; while it works off a
backlog it keeps its connection across back-to-back batches (reopening the file for every batch
costs a checkpoint each time) but releases it at least every `HOLD_SECONDS`, so a `dbt build`
can take the file between batches. While another process holds the file the sink pauses its
partitions, keeps polling and retries, and Kafka buffers.

Nothing is lost silently: offsets the broker deleted before the sink read them (retention) are
recorded in `raw.sink_gaps` in the transaction that moves past them (`gaps.py`). Every wait on
Kafka is bounded (`watchdog.py`): start-up fails after `connect_timeout`, a broker silent for
`broker_timeout` stops the sink (unless `retry_forever`), and a stop request is honoured within
a few seconds in every state.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import duckdb
import pyarrow as pa
from kafka import TopicPartition
from kafka.errors import KafkaError

from shoplens.config import EVENTS_TOPIC, TRANSACTIONS_TOPIC
from shoplens.stream.clients import SinkConsumer
from shoplens.stream.contract import BATCH_SCHEMA, CONTRACTS, Validator
from shoplens.stream.gaps import Gap, find_gap, insert_gaps
from shoplens.stream.watchdog import (
    BrokerWatch,
    KafkaUnavailable,
    cached_partitions,
    wait_for_topics,
)
from shoplens.warehouse import ensure_raw_schema, is_lock_error, start_run

DEFAULT_GROUP = "shoplens-sink"
# Nothing fetched for this long while behind the log end: check and restart the fetch.
STALL_SECONDS = 3.0
SOURCE = "kafka"
# While working off a backlog the writer keeps the file open across batches for at most this
# long, then releases it (dbt-duckdb retries its connect after 1, 2, 4... s).
HOLD_SECONDS = 1.0
# After a full batch (a backlog sign) the writer waits this long for the next one with the
# file still open; otherwise, and after this, it releases the file.
LINGER_SECONDS = 0.1
# While the sink runs, a thread waiting for the GIL gets it after at most this long (Python's
# default is 5 ms). The consumer thread is pure Python and holds the GIL nearly all the time;
# the writer needs it back after every DuckDB call, and waiting 5 ms each time made it the
# bottleneck (measured: sink throughput up by a third).
GIL_SWITCH_INTERVAL = 0.001
# Exit codes of `shoplens sink` beyond 0 (success) and 1 (error): messages were deleted by the
# broker before the sink read them (recorded in raw.sink_gaps); Kafka could not be reached, was
# lost for `broker_timeout`, or was silent when the sink stopped idle (messages may be unread).
EXIT_GAPS = 3
EXIT_KAFKA = 4


@dataclass
class SinkConfig:
    """How the sink runs. Times are in seconds unless the name says ms."""

    db: Path
    bootstrap: str
    group: str = DEFAULT_GROUP
    topics: tuple[str, ...] = (EVENTS_TOPIC, TRANSACTIONS_TOPIC)
    batch_size: int = 5_000  # hand a batch to the writer at this many messages...
    max_batch: int = 25_000  # ...but while it is busy keep buffering up to this many
    batch_interval: float = 0.25
    stop_when_idle: float | None = None
    progress_every: float = 5.0
    # At a stop request, give up waiting for a busy warehouse after this long (the batch stays
    # in Kafka for the next run).
    shutdown_timeout: float = 3.0
    connect_timeout: float = 10.0  # start-up: fail if no broker answers within this long
    broker_timeout: float = 30.0  # running: stop after this long without an answer...
    retry_forever: bool = False  # ...unless this is set (then warn once per broker_timeout)


@dataclass
class SinkStats:
    """What a sink run did."""

    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    batches: int = 0
    conflicts: int = 0
    lock_waits: int = 0
    reseeks: int = 0
    gaps: int = 0  # gaps recorded in raw.sink_gaps by this run
    missing: int = 0  # messages in those gaps
    lag: int | None = None
    # Why the run ended: "stop" (asked to), "idle", "idle_kafka_silent", "kafka_lost",
    # "kafka_unreachable"; with `problem` the one-line reason when that is a failure.
    stopped: str = "stop"
    problem: str | None = None
    kafka_silent: float = 0.0  # seconds since Kafka last answered, as of the last check
    started: float = field(default_factory=time.monotonic)
    first_record: float | None = None  # monotonic time the first record was buffered
    last_commit: float | None = None  # monotonic time the last batch committed

    @property
    def throughput(self) -> float:
        """Messages per second from the first record buffered to the last commit."""
        if self.first_record is None or self.last_commit is None:
            return 0.0
        return self.messages / max(self.last_commit - self.first_record, 1e-9)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        """A one-line progress report."""
        rate = self.messages / self.elapsed if self.elapsed > 0 else 0.0
        rows = ", ".join(f"{n:,} {t.split('.')[-1]}" for t, n in sorted(self.rows.items()))
        lag = "?" if self.lag is None else f"{self.lag:,}"
        if self.lag is None and self.kafka_silent >= STALL_SECONDS:
            lag += f" (no answer from Kafka for {self.kafka_silent:.0f} s)"
        gaps = (
            f", {self.gaps:,} gaps ({self.missing:,} messages deleted unread)" if self.gaps else ""
        )
        return (
            f"sink: {self.messages:,} messages ({rows or 'no rows'}, {self.rejects:,} "
            f"rejects{gaps}) in {self.batches:,} batches, {rate:,.0f} msg/s, lag {lag}"
        )

    @property
    def exit_code(self) -> int:
        """0, or EXIT_GAPS when messages were deleted unread (that outranks Kafka trouble),
        or EXIT_KAFKA when Kafka was unreachable, lost, or silent at an idle stop."""
        if self.gaps:
            return EXIT_GAPS
        return EXIT_KAFKA if self.problem else 0

    def failure(self) -> str | None:
        """The one-line reason for a non-zero exit code (None when it is 0)."""
        parts = []
        if self.gaps:
            parts.append(
                f"{self.missing:,} messages in {self.gaps:,} gaps were deleted by the broker "
                "before the sink read them (recorded in raw.sink_gaps)"
            )
        if self.problem:
            parts.append(self.problem)
        return "; ".join(parts) or None


class BatchHook:
    """Extension point called around each batch write (the live scorer implements it)."""

    def prepare(self, rows: dict[str, pa.Table]) -> Any:
        """Compute what to write with the batch (before the file is opened)."""
        return None

    def write(self, con: duckdb.DuckDBPyConnection, prepared: Any) -> None:
        """Write inside the batch's transaction."""

    def committed(self, prepared: Any) -> None:
        """Act after the transaction committed (e.g. publish alerts)."""

    def close(self) -> None:
        """Release resources."""


class _Buffer:
    """Records of one topic waiting for the next flush, as parallel lists."""

    def __init__(self) -> None:
        self.partitions: list[int] = []
        self.offsets: list[int] = []
        self.payloads: list[bytes | None] = []

    def __len__(self) -> int:
        return len(self.offsets)

    def clear(self) -> None:
        self.partitions, self.offsets, self.payloads = [], [], []

    def drop_partitions(self, partitions: set[int]) -> None:
        keep = [i for i, p in enumerate(self.partitions) if p not in partitions]
        self.partitions = [self.partitions[i] for i in keep]
        self.offsets = [self.offsets[i] for i in keep]
        self.payloads = [self.payloads[i] for i in keep]

    def table(self) -> pa.Table:
        return pa.table(
            {
                "partition": pa.array(self.partitions, pa.int32()),
                "kafka_offset": pa.array(self.offsets, pa.int64()),
                "payload": pa.array(self.payloads, pa.binary()),
            },
            schema=BATCH_SCHEMA,
        )


class WarehouseBusy(Exception):
    """The warehouse file is held by another process right now."""


class WriteAbandoned(Exception):
    """Shutdown gave up waiting for the warehouse; the batch stays in Kafka."""


@dataclass
class _Batch:
    """Records handed to the writer, with the offsets they advance."""

    tables: dict[str, pa.Table]
    next_offsets: dict[TopicPartition, int]
    expected_stored: dict[TopicPartition, int | None]
    messages: int
    full: bool  # handed off by size, not by time: records are arriving faster than written
    gaps: list[Gap] = field(default_factory=list)  # deleted offsets these next_offsets skip


@dataclass
class _Prepared:
    """A validated batch, ready to write (kept across retries while the file is busy)."""

    batch: _Batch
    valid: dict[str, pa.Table]
    rejects: list[pa.Table]
    hook: Any


@dataclass
class _Result:
    batch: _Batch
    rows: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    stale: list[TopicPartition] = field(default_factory=list)
    error: BaseException | None = None
    done_at: float = 0.0


class _Writer:
    """A thread that validates and writes one batch at a time (DuckDB releases the GIL, so
    the consumer keeps fetching meanwhile), one transaction per batch. It keeps its
    connection across back-to-back full batches for up to HOLD_SECONDS and releases the file
    otherwise; while the file is held elsewhere it retries with back-off."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._batch: _Batch | None = None
        self._results: list[_Result] = []
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

    def submit(self, batch: _Batch) -> None:
        with self._lock:
            if self._batch is not None:
                raise RuntimeError("writer busy")
            self._batch = batch
            self._work.notify()

    def results(self) -> list[_Result]:
        with self._lock:
            out, self._results = self._results, []
        return out

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._work.notify()
        self._thread.join()

    def _next(self) -> _Batch | None:
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
            self._con = self.sink._open()
            self._held_since = time.monotonic()
        return self._con

    def _release(self) -> None:
        """Close the writer's connection, if open: the file is free for other processes."""
        if self._con is not None:
            con, self._con = self._con, None
            con.close()

    def _write_with_retry(self, batch: _Batch) -> _Result:
        try:
            prepared = self.sink._prepare(batch)
        except Exception as exc:  # handed to the consumer thread, which re-raises
            return _Result(batch, error=exc)
        delay = 0.02
        while True:
            try:
                result = self.sink._write(self._connection(), prepared)
                if self.waiting_since is not None:
                    self.sink.report(
                        f"sink: warehouse free again after "
                        f"{time.monotonic() - self.waiting_since:.1f} s"
                    )
                    self.waiting_since = None
                return result
            except WarehouseBusy:
                if self.waiting_since is None:
                    self.waiting_since = time.monotonic()
                    self.sink.stats.lock_waits += 1
                    self.sink.report(
                        "sink: warehouse busy (another process holds it); "
                        "retrying while Kafka buffers"
                    )
                if self.abandon.wait(delay):
                    return _Result(batch, error=WriteAbandoned("gave up waiting for the warehouse"))
                delay = min(delay * 2, 0.5)
            except Exception as exc:  # handed to the consumer thread, which re-raises
                return _Result(batch, error=exc)


class Sink:
    """One sink instance. `run(stop)` consumes until `stop` is set (or idle, if configured)."""

    def __init__(
        self,
        config: SinkConfig,
        hook: BatchHook | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.hook = hook or BatchHook()
        self.report = report or (lambda line: None)
        self.stats = SinkStats()
        self.validators = {t: Validator(CONTRACTS[t]) for t in config.topics}
        self.buffers = {t: _Buffer() for t in config.topics}
        # Next offset stored in DuckDB for each owned partition (None: nothing stored yet).
        self.committed: dict[TopicPartition, int | None] = {}
        # Next offset this sink accepts for each owned partition.
        self.expected: dict[TopicPartition, int] = {}
        self.pending_seek: set[TopicPartition] = set()
        # Partitions found behind the log end by the last lag check.
        self._behind: set[TopicPartition] = set()
        # Gaps found but not yet handed to the writer (they go with the next batch).
        self.gaps_pending: list[Gap] = []
        self.watch = BrokerWatch(
            config.bootstrap, config.broker_timeout, config.retry_forever, self.report
        )
        self._schema_ready = False
        self._first_buffered: float | None = None
        # Offsets live in DuckDB; partitions are assigned by the sink (no consumer group).
        self.consumer = SinkConsumer(config.bootstrap, client_id=f"{config.group}-consumer")
        self.writer = _Writer(self)

    # ---------------------------------------------------------------- partition bookkeeping

    def _connect(self, stop: threading.Event) -> bool:
        """Wait (at most `connect_timeout`) until Kafka serves the topics, then take their
        partitions; False if stopped first. Raises KafkaUnavailable. Nothing touches the
        warehouse before this succeeds."""
        cfg = self.config
        self.report(
            f"sink: connecting to Kafka at {cfg.bootstrap} (giving up after "
            f"{cfg.connect_timeout:g} s)"
        )
        found = wait_for_topics(
            self.consumer,
            cfg.topics,
            bootstrap=cfg.bootstrap,
            timeout=cfg.connect_timeout,
            stop=stop,
        )
        if found is None:
            return False
        self.watch.contact()
        self._assign_partitions()
        return True

    def _assign_partitions(self) -> None:
        """Own every partition the topics have (from the brokers' metadata, or the last known
        partitions while they do not answer); new ones are held until their offsets are
        read. Nothing is given up: a topic missing from one metadata answer keeps its
        partitions."""
        owned = self.consumer.assignment()
        new = {
            TopicPartition(topic, partition)
            for topic in self.config.topics
            for partition in cached_partitions(self.consumer, topic)
        } - owned
        if new:
            self.consumer.assign(sorted(owned | new))
            self._assign(new)

    def _assign(self, assigned: set[TopicPartition]) -> None:
        """Hold new partitions until their offsets are read from DuckDB (main loop)."""
        self.pending_seek |= assigned
        self.consumer.pause(*assigned)

    def _seek_pending(self) -> None:
        """Seek the held partitions to the offsets stored in DuckDB; resume them.

        Raises WarehouseBusy when the file is held by another process.
        """
        with self._connection() as con:
            stored = self._stored_offsets(con)
        ends = self._end_offsets(self.pending_seek)
        # Where the logs start now ({} if Kafka does not answer: the jump and lag checks
        # then find any gap once it answers).
        starts = self._beginning_offsets(self.pending_seek)
        for tp in sorted(self.pending_seek):
            offset = stored.get((tp.topic, tp.partition))
            self.committed[tp] = offset
            if offset is not None and ends.get(tp, offset) < offset:
                # The log ends before what we stored: the topic was deleted and recreated.
                self.report(
                    f"sink: {tp.topic}[{tp.partition}] ends at {ends[tp]} but the "
                    f"warehouse stored {offset} (topic recreated?); reading it from "
                    "the start"
                )
                offset = None
            self.expected[tp] = offset or 0
            gap = find_gap(tp, self.expected[tp], starts[tp]) if tp in starts else None
            if gap is not None:
                self._record_gap(gap)
                self.consumer.seek(tp, self.expected[tp])
            elif offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)
        self.consumer.resume(*self.pending_seek)
        self.pending_seek.clear()

    def _record_gap(self, gap: Gap) -> None:
        """Note a gap (written with the next batch) and move past it."""
        self.report(gap.warning())
        self.gaps_pending.append(gap)
        self.expected[gap.tp] = gap.last_offset + 1

    # ---------------------------------------------------------------- warehouse access

    def _open(self) -> duckdb.DuckDBPyConnection:
        """A writer connection to the warehouse, or WarehouseBusy if the file is held."""
        try:
            con = duckdb.connect(str(self.config.db))
        except duckdb.Error as exc:
            if is_lock_error(exc):
                raise WarehouseBusy(str(exc)) from exc
            raise
        try:
            # One DuckDB thread: the consumer thread needs the other core (measured: 5% less
            # CPU per message, same throughput).
            con.execute("set threads = 1")
            if not self._schema_ready:
                ensure_raw_schema(con)
                start_run(
                    con, SOURCE, {"group": self.config.group, "topics": list(self.config.topics)}
                )
                self._schema_ready = True
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One short-lived connection, or WarehouseBusy if the file is held."""
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    def _stored_offsets(self, con: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], int]:
        rows = con.execute(
            "select topic, partition, next_offset from raw.sink_offsets where consumer_group = ?",
            [self.config.group],
        ).fetchall()
        return {(t, p): o for t, p, o in rows}

    def _prepare(self, batch: _Batch) -> _Prepared:
        """Validate a batch and let the hook prepare its part (writer thread, no file)."""
        valid: dict[str, pa.Table] = {}
        rejects: list[pa.Table] = []
        for topic, table in batch.tables.items():
            rows, bad = self.validators[topic].validate(table)
            valid[CONTRACTS[topic].table] = rows
            if bad.num_rows:
                rejects.append(bad.append_column("topic", pa.array([topic] * bad.num_rows)))
        return _Prepared(batch, valid, rejects, self.hook.prepare(valid))

    def _write(self, con: duckdb.DuckDBPyConnection, prepared: _Prepared) -> _Result:
        """Write a prepared batch in one transaction on `con`."""
        batch = prepared.batch
        result = _Result(
            batch,
            rows={t: r.num_rows for t, r in prepared.valid.items()},
            rejects=sum(b.num_rows for b in prepared.rejects),
        )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        con.execute("begin transaction")
        try:
            stored = self._stored_offsets(con)
            result.stale = [
                tp
                for tp in batch.next_offsets
                if stored.get((tp.topic, tp.partition)) != batch.expected_stored.get(tp)
            ]
            if result.stale:
                con.execute("rollback")
                return result
            self._insert(con, prepared.valid, prepared.rejects, batch.next_offsets, now)
            insert_gaps(con, self.config.group, batch.gaps, now)
            self.hook.write(con, prepared.hook)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        self.hook.committed(prepared.hook)
        return result

    def _insert(
        self,
        con: duckdb.DuckDBPyConnection,
        valid: dict[str, pa.Table],
        rejects: list[pa.Table],
        next_offsets: dict[TopicPartition, int],
        now: dt.datetime,
    ) -> None:
        for table, rows in valid.items():
            if rows.num_rows:
                cols = ", ".join(rows.column_names)
                con.register("_shoplens_rows", rows)
                con.execute(
                    f"insert into {table} ({cols}, source, loaded_at) "
                    f"select {cols}, ?, ?::timestamp from _shoplens_rows",
                    [SOURCE, now],
                )
                con.unregister("_shoplens_rows")
        for bad in rejects:
            con.register("_shoplens_rejects", bad)
            con.execute(
                "insert into raw.rejects (rejected_at, source, topic, partition, kafka_offset, "
                "payload, reason) select ?::timestamp, ?, topic, partition, kafka_offset, "
                "payload, reason from _shoplens_rejects",
                [now, SOURCE],
            )
            con.unregister("_shoplens_rejects")
        offsets = pa.table(
            {
                "topic": [tp.topic for tp in next_offsets],
                "partition": pa.array([tp.partition for tp in next_offsets], pa.int32()),
                "next_offset": pa.array(list(next_offsets.values()), pa.int64()),
            }
        )
        con.register("_shoplens_offsets", offsets)
        con.execute(
            "delete from raw.sink_offsets o using _shoplens_offsets n where "
            "o.consumer_group = ? and o.topic = n.topic and o.partition = n.partition",
            [self.config.group],
        )
        con.execute(
            "insert into raw.sink_offsets select ?, topic, partition, next_offset, "
            "?::timestamp from _shoplens_offsets",
            [self.config.group, now],
        )
        con.unregister("_shoplens_offsets")

    # ---------------------------------------------------------------- consuming

    def _accept(self, records: dict[TopicPartition, list[Any]]) -> int:
        """Buffer polled records, skipping held partitions and offsets already stored.

        The records of one partition in one poll come in ascending offset order. Records that
        do not start at the expected offset (the client jumped, e.g. reset after the offset
        went out of range) are checked against the log start: deleted offsets become a gap.
        """
        if not records:
            return 0
        self.watch.contact()
        accepted: dict[TopicPartition, list[Any]] = {}
        for tp, msgs in records.items():
            if not msgs or tp in self.pending_seek or tp not in self.expected:
                continue
            expected = self.expected[tp]
            if msgs[0].offset < expected:
                msgs = [m for m in msgs if m.offset >= expected]
                if not msgs:
                    continue
            accepted[tp] = msgs
        jumped = [tp for tp, msgs in accepted.items() if msgs[0].offset > self.expected[tp]]
        starts = self._beginning_offsets(set(jumped)) if jumped else {}
        for tp in jumped:
            if tp not in starts:
                # Kafka did not say where the log starts: read from the expected offset again.
                self.consumer.seek(tp, self.expected[tp])
                del accepted[tp]
                continue
            gap = find_gap(tp, self.expected[tp], starts[tp], accepted[tp][0].offset)
            if gap is not None:
                self._record_gap(gap)
        n = 0
        for tp, msgs in accepted.items():
            buffer = self.buffers[tp.topic]
            buffer.partitions.extend([tp.partition] * len(msgs))
            buffer.offsets.extend([m.offset for m in msgs])
            buffer.payloads.extend([m.value for m in msgs])
            self.expected[tp] = msgs[-1].offset + 1
            n += len(msgs)
        if n and self._first_buffered is None:
            self._first_buffered = time.monotonic()
            if self.stats.first_record is None:
                self.stats.first_record = self._first_buffered
        return n

    def buffered(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def _pending(self) -> bool:
        """Records or gaps wait for the writer."""
        return bool(self.gaps_pending) or self.buffered() > 0

    def _lag(self, find_gaps: bool = True) -> int | None:
        """Messages behind the log end (asks the brokers; None while they cannot answer).

        With `find_gaps`, partitions behind are checked against their log start first: what
        the broker deleted is recorded as a gap and is not lag.
        """
        owned = self.consumer.assignment()
        if not owned or any(tp not in self.expected for tp in owned):
            return None
        ends = self._end_offsets(owned)
        if len(ends) < len(owned):
            return None
        behind = {tp for tp, end in ends.items() if end > self.expected[tp]}
        if behind and find_gaps:
            self._skip_deleted(behind - self.pending_seek)
        lag = {tp: end - self.expected[tp] for tp, end in ends.items() if end > self.expected[tp]}
        self._behind = set(lag)
        return sum(lag.values())

    def _skip_deleted(self, partitions: set[TopicPartition]) -> None:
        """Record a gap for each partition whose log start moved past the expected offset, and
        read on from the log start (what the client may hold of the gap is dropped with it)."""
        for tp, start in self._beginning_offsets(partitions).items():
            gap = find_gap(tp, self.expected[tp], start)
            if gap is not None:
                self._record_gap(gap)
                self.consumer.seek(tp, start)

    def _end_offsets(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Log end offsets from the brokers ({} while they cannot answer)."""
        return self._list_offsets(self.consumer.end_offsets, partitions)

    def _beginning_offsets(self, partitions: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Log start offsets from the brokers ({} while they cannot answer)."""
        return self._list_offsets(self.consumer.beginning_offsets, partitions)

    def _list_offsets(
        self,
        ask: Callable[..., dict[TopicPartition, int]],
        partitions: set[TopicPartition],
    ) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        try:
            offsets = ask(sorted(partitions), timeout_ms=2000)
        except KafkaError:
            return {}
        if offsets:  # a client may answer with no partition instead of raising
            self.watch.contact()
        return offsets

    def _unstick(self, idle: float) -> None:
        """Re-seek partitions that are behind although nothing arrived for `idle` seconds.

        A client can stop fetching after a broker outage (positions stay, no new fetch);
        seeking to the next expected offset restarts the fetch without skipping anything.
        """
        stuck = [tp for tp in self._behind if tp in self.expected]
        if not stuck or self.pending_seek:
            return
        self.report(
            f"sink: nothing fetched for {idle:.0f} s while {len(stuck)} partition(s) "
            "are behind; re-seeking them"
        )
        for tp in stuck:
            self.consumer.seek(tp, self.expected[tp])
        self.stats.reseeks += 1

    def _handoff(self) -> None:
        """Give the buffered records and the gaps found to the writer as one batch."""
        tables, next_offsets, messages = {}, {}, 0
        for topic, buffer in self.buffers.items():
            if not len(buffer):
                continue
            messages += len(buffer)
            for p, o in zip(buffer.partitions, buffer.offsets, strict=True):
                next_offsets[TopicPartition(topic, p)] = o + 1
            tables[topic] = buffer.table()
            buffer.clear()
        gaps, self.gaps_pending = self.gaps_pending, []
        for gap in gaps:  # a gap after the partition's last buffered record moves it further
            next_offsets[gap.tp] = max(next_offsets.get(gap.tp, 0), gap.last_offset + 1)
        self._first_buffered = None
        expected_stored = {tp: self.committed.get(tp) for tp in next_offsets}
        # The next batch expects the offsets this one will store.
        self.committed.update(next_offsets)
        self.writer.submit(
            _Batch(
                tables,
                next_offsets,
                expected_stored,
                messages,
                full=messages >= self.config.batch_size,
                gaps=gaps,
            )
        )

    def _collect(self) -> None:
        """Account for finished writes; re-read partitions whose offsets moved under us."""
        for result in self.writer.results():
            if isinstance(result.error, WriteAbandoned):
                # Only at shutdown: the batch (and its gaps) stays in Kafka for the next run.
                self.report(
                    f"sink: stopped while the warehouse was busy; {result.batch.messages:,} "
                    "fetched messages stay in Kafka for the next run"
                )
                continue
            if result.error is not None:
                raise result.error
            if result.stale:
                self._conflict(result)
                continue
            self.stats.gaps += len(result.batch.gaps)
            self.stats.missing += sum(g.missing for g in result.batch.gaps)
            self.stats.messages += result.batch.messages
            self.stats.batches += 1
            self.stats.last_commit = result.done_at
            self.stats.rejects += result.rejects
            for table, n in result.rows.items():
                self.stats.rows[table] = self.stats.rows.get(table, 0) + n

    def _conflict(self, result: _Result) -> None:
        """Another instance wrote these partitions: drop our copy and re-read from DuckDB."""
        self.stats.conflicts += 1
        self.report(
            "sink: stored offsets moved under us (another sink wrote them); "
            "re-reading from the warehouse"
        )
        owned = self.consumer.assignment()
        redo = {tp for tp in result.batch.next_offsets if tp in owned}
        for topic, buffer in self.buffers.items():
            buffer.drop_partitions({tp.partition for tp in redo if tp.topic == topic})
        # Gaps found meanwhile are found again from the stored offsets.
        self.gaps_pending = [g for g in self.gaps_pending if g.tp not in redo]
        if not self.buffered():
            self._first_buffered = None
        self.pending_seek |= redo
        self.consumer.pause(*redo)

    def _poll(
        self,
        timeout: float,
        max_records: int | None = None,
    ) -> dict[TopicPartition, list[Any]]:
        """consumer.poll, riding out retriable client errors (broker restarts, coordinator
        moves): the consumer reconnects on its own, nothing is lost by trying again."""
        try:
            return self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            self.report(f"sink: Kafka not reachable ({exc}); retrying")
            time.sleep(0.2)
            return {}

    def _poll_paused(self, timeout: float) -> None:
        """Poll with every partition paused: keep the client's connections without fetching."""
        self.consumer.pause(*self.consumer.assignment())
        try:
            self._accept(self._poll(timeout))
        finally:
            self.consumer.resume(*(self.consumer.assignment() - self.pending_seek))

    def _drain(self, stop: threading.Event) -> None:
        """Wait (polling, paused) until the writer is idle; give up at shutdown if told to."""
        deadline = None
        while self.writer.busy:
            if stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.config.shutdown_timeout
            if deadline is not None and time.monotonic() > deadline:
                self.writer.abandon.set()
            self._poll_paused(0.05)
        self._collect()

    def _seek_when_free(self, stop: threading.Event) -> None:
        """Seek held partitions once pending writes are done and the file can be opened."""
        self._drain(stop)
        delay = 0.02
        while self.pending_seek and not stop.is_set():
            try:
                self._seek_pending()
            except WarehouseBusy:
                self._poll_paused(delay)
                delay = min(delay * 2, 0.5)

    def run(self, stop: threading.Event | None = None) -> SinkStats:
        """Consume until `stop` is set, Kafka is lost, or (with `stop_when_idle`) nothing
        arrives for a while. `stats.stopped` says which, `stats.exit_code` whether it failed."""
        stop = stop or threading.Event()
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, GIL_SWITCH_INTERVAL))
        connected = False
        try:
            try:
                connected = self._connect(stop)
            except KafkaUnavailable as exc:
                self.stats.stopped, self.stats.problem = "kafka_unreachable", str(exc)
            if connected:
                self._consume(stop)
        finally:
            sys.setswitchinterval(switch_interval)
            self.writer.abandon.set()
            self.writer.close()
            if connected and self.stats.stopped not in ("kafka_lost", "idle_kafka_silent"):
                self.stats.lag = self._lag(find_gaps=False)
            self.consumer.close(autocommit=False)
            for validator in self.validators.values():
                validator.close()
            self.hook.close()
        if connected:
            self.report(self.stats.line())
        return self.stats

    def _consume(self, stop: threading.Event) -> None:
        """The main loop (see `run`), then land what is buffered."""
        cfg = self.config
        last_progress = last_record = time.monotonic()
        while not stop.is_set():
            self._collect()
            if self.pending_seek:
                self._seek_when_free(stop)
                continue
            limit = max(cfg.max_batch, cfg.batch_size)
            if self.buffered() >= limit:
                # The writer is behind (or waiting for the file): let Kafka buffer.
                self._poll_paused(0.05)
            else:
                room = limit - self.buffered()
                got = self._accept(self._poll(0.05, room))
                if got:
                    last_record = time.monotonic()
            now = time.monotonic()
            due = (
                bool(self.gaps_pending)
                or self.buffered() >= cfg.batch_size
                or (
                    self._first_buffered is not None
                    and now - self._first_buffered >= cfg.batch_interval
                )
            )
            if due and not self.writer.busy and not self.pending_seek:
                self._handoff()
            quiet = now - last_record
            check = now - last_progress >= cfg.progress_every or (
                quiet >= STALL_SECONDS and now - last_progress >= STALL_SECONDS
            )
            if check:
                self._assign_partitions()
                self.stats.lag = self._lag()
                self.stats.kafka_silent = self.watch.silent_for()
                self.report(self.stats.line())
                last_progress = now
                if self.watch.check():
                    self.stats.stopped, self.stats.problem = "kafka_lost", self.watch.lost_message()
                    self.report(f"sink: {self.stats.problem}")
                    break
                if quiet >= STALL_SECONDS and self.stats.lag:
                    self._unstick(quiet)
                    last_record = now
            if (
                cfg.stop_when_idle is not None
                and quiet >= cfg.stop_when_idle
                and not self._pending()
                and not self.writer.busy
                and not self.pending_seek
            ):
                lag = self._lag()
                if lag == 0:
                    self.stats.stopped = "idle"
                    break
                silent = self.watch.silent_for()
                if lag is None and silent >= cfg.stop_when_idle:
                    # A silent broker counts as idle, but what it holds may be unread.
                    self.stats.stopped = "idle_kafka_silent"
                    self.stats.problem = (
                        f"stopped idle while no Kafka broker at {cfg.bootstrap} had answered "
                        f"for {silent:.0f} s: messages may be unread"
                    )
                    break
        self._drain(stop)
        if self._pending() and not self.pending_seek:
            self._handoff()
            self._drain(stop)


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM (main thread only): finish the batch, then exit."""
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _handler)
    return stop


def stats_json(stats: SinkStats) -> str:
    """Machine-readable summary of a run (printed by `shoplens sink --json`)."""
    return json.dumps(
        {
            "messages": stats.messages,
            "rows": stats.rows,
            "rejects": stats.rejects,
            "batches": stats.batches,
            "conflicts": stats.conflicts,
            "lock_waits": stats.lock_waits,
            "reseeks": stats.reseeks,
            "gaps": stats.gaps,
            "missing": stats.missing,
            "lag": stats.lag,
            "stopped": stats.stopped,
            "exit_code": stats.exit_code,
            "seconds": round(stats.elapsed, 3),
        },
        sort_keys=True,
    )
