"""The sink's consumer loop (`Sink`): takes the partitions, buffers records, hands batches to
the writer thread (`writer.py`, which writes them through `store.py`) and accounts for them.

See the package docstring for the exactly-once design.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from kafka import TopicPartition
from kafka.errors import KafkaError

from shoplens.stream.clients import Fetched, SinkConsumer
from shoplens.stream.gaps import Gap, find_gap
from shoplens.stream.sink.buffer import Batch, TopicBuffer
from shoplens.stream.sink.config import STALL_SECONDS, SinkConfig
from shoplens.stream.sink.errors import WarehouseBusy, WriteAbandoned
from shoplens.stream.sink.hooks import BatchHook
from shoplens.stream.sink.stats import SinkStats
from shoplens.stream.sink.store import SinkStore, WriteResult
from shoplens.stream.sink.writer import Writer
from shoplens.stream.watchdog import (
    BrokerWatch,
    KafkaUnavailable,
    cached_partitions,
    wait_for_topics,
)

# While the sink runs, a thread waiting for the GIL gets it after at most this long (Python's
# default is 5 ms). The consumer thread is pure Python and holds the GIL nearly all the time;
# the writer needs it back after every DuckDB call, and waiting 5 ms each time made it the
# bottleneck (measured: sink throughput up by a third).
GIL_SWITCH_INTERVAL = 0.001


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
        self.store = SinkStore(config.db, config.group, config.topics, self.hook)
        self.buffers = {t: TopicBuffer() for t in config.topics}
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
        self._first_buffered: float | None = None
        # The last batch handed over was full: a backlog is being worked off.
        self._backlog = False
        # Offsets live in DuckDB; partitions are assigned by the sink (no consumer group).
        self.consumer = SinkConsumer(config.bootstrap, client_id=f"{config.group}-consumer")
        self.writer = Writer(self.store, self.report, self._count_lock_wait)

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
        con = self.store.open()
        try:
            stored = self.store.stored_offsets(con)
        except BaseException:
            con.close()
            raise
        # The writer keeps the connection for the first batch (a backlog starts at once):
        # closing it here would cost a checkpoint now and an open of the file for that batch.
        self.writer.adopt(con)
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

    def _count_lock_wait(self) -> None:
        """The writer began waiting for a warehouse held elsewhere (writer thread)."""
        self.stats.lock_waits += 1

    def _record_gap(self, gap: Gap) -> None:
        """Note a gap (written with the next batch) and move past it."""
        self.report(gap.warning())
        self.gaps_pending.append(gap)
        self.expected[gap.tp] = gap.last_offset + 1

    # ---------------------------------------------------------------- consuming

    def _accept(self, records: dict[TopicPartition, Fetched]) -> int:
        """Buffer polled records, skipping held partitions and offsets already stored.

        The records of one partition in one poll come in ascending offset order. Records that
        do not start at the expected offset (the client jumped, e.g. reset after the offset
        went out of range) are checked against the log start: deleted offsets become a gap.
        """
        if not records:
            return 0
        self.watch.contact()
        accepted: dict[TopicPartition, Fetched] = {}
        for tp, msgs in records.items():
            if not msgs or tp in self.pending_seek or tp not in self.expected:
                continue
            expected = self.expected[tp]
            if msgs.offsets[0] < expected:
                msgs = msgs.since(expected)
                if not msgs:
                    continue
            accepted[tp] = msgs
        jumped = [tp for tp, msgs in accepted.items() if msgs.offsets[0] > self.expected[tp]]
        starts = self._beginning_offsets(set(jumped)) if jumped else {}
        for tp in jumped:
            if tp not in starts:
                # Kafka did not say where the log starts: read from the expected offset again.
                self.consumer.seek(tp, self.expected[tp])
                del accepted[tp]
                continue
            gap = find_gap(tp, self.expected[tp], starts[tp], accepted[tp].offsets[0])
            if gap is not None:
                self._record_gap(gap)
        n = 0
        for tp, msgs in accepted.items():
            self.buffers[tp.topic].add(tp.partition, msgs)
            self.expected[tp] = msgs.offsets[-1] + 1
            n += len(msgs)
        for buffer in self.buffers.values():
            buffer.seal()
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
            for p, o in buffer.last.items():
                next_offsets[TopicPartition(topic, p)] = o + 1
            tables[topic] = buffer.table()
            buffer.clear()
        gaps, self.gaps_pending = self.gaps_pending, []
        for gap in gaps:  # a gap after the partition's last buffered record moves it further
            next_offsets[gap.tp] = max(next_offsets.get(gap.tp, 0), gap.last_offset + 1)
        self._first_buffered = None
        self._backlog = messages >= self.config.batch_size
        expected_stored = {tp: self.committed.get(tp) for tp in next_offsets}
        # The next batch expects the offsets this one will store.
        self.committed.update(next_offsets)
        self.writer.submit(
            Batch(
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

    def _conflict(self, result: WriteResult) -> None:
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
    ) -> dict[TopicPartition, Fetched]:
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
        # Every fetched message is a GC-tracked object, and a batch keeps thousands alive:
        # Python's collector then ran full collections over the whole heap of the imported
        # libraries. Frozen, that heap is skipped (measured, consumer thread on 48,000 bulk
        # messages: 5.3-6.7 -> 2.1-2.4 us per message; 1.7 with no collection at all).
        # Process-wide: a second sink in the same process ending first unfreezes it early.
        gc.freeze()
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
            gc.unfreeze()
            self.writer.abandon.set()
            self.writer.close()
            if connected and self.stats.stopped not in ("kafka_lost", "idle_kafka_silent"):
                self.stats.lag = self._lag(find_gaps=False)
            self.consumer.close(autocommit=False)
            self.store.close()
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
            buffered = self.buffered()
            ready = self.writer.ready
            caught_up = False
            if buffered >= limit:
                # The writer is behind (or waiting for the file): let Kafka buffer until it
                # can take the batch (it gets it in this round).
                self.writer.wait_ready(0.05)
            else:
                # A ready writer gets a batch as soon as `batch_size` records are there (one
                # poll can return far more when the client has prefetched a backlog, and the
                # writer would wait for all of it); while it is busy the batch grows to `limit`.
                room = (cfg.batch_size if ready else limit) - buffered
                # With records waiting for a busy writer, do not sit in a poll once it is
                # ready: take what the client holds, else wait for the writer.
                waiting = buffered > 0 and not ready
                polled = self._poll(0 if waiting else 0.05, room) if room > 0 else {}
                # The client held fewer records than asked for: all fetched so far is here.
                caught_up = room > 0 and sum(map(len, polled.values())) < room
                if self._accept(polled):
                    last_record = time.monotonic()
                elif waiting:
                    self.writer.wait_ready(0.05)
            now = time.monotonic()
            buffered = self.buffered()
            due = (
                bool(self.gaps_pending)
                or buffered >= cfg.batch_size
                # The end of a backlog goes at once, without waiting for `batch_interval`.
                or (
                    self._backlog
                    and caught_up
                    and buffered > 0
                    and self.consumer.fetched_to(self.expected)
                )
                or (
                    self._first_buffered is not None
                    and now - self._first_buffered >= cfg.batch_interval
                )
            )
            if due and self.writer.ready and not self.pending_seek:
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
