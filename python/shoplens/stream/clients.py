"""Kafka clients: settings shared by the producer, the sink and the scorer, and the sink's
consumer (`SinkConsumer`, confluent-kafka behind the few calls the sink makes)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException
from confluent_kafka import TopicPartition as ConfluentTopicPartition
from kafka import TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

# kafka-python 3.x first sends ApiVersions v4, which librdkafka's mock cluster answers with a
# short fallback reply the client cannot decode; 2.3 is the last setting that starts at v2.
# Real brokers (Kafka 2.3 up to 4.x) accept these request versions too, so it is pinned for
# every client against every cluster.
KAFKA_API_VERSION = (2, 3)

# Fetch settings of the kafka-python consumers here (the benchmark's bare loop; the sink reads
# through librdkafka, with the same settings in CONFLUENT_FETCH_SETTINGS). Idle fetches return
# after at most 100 ms, which bounds the latency of a quiet stream.
CONSUMER_FETCH_SETTINGS = {"max_partition_fetch_bytes": 4 * 2**20, "fetch_max_wait_ms": 100}
CONFLUENT_FETCH_SETTINGS = {
    "max.partition.fetch.bytes": 4 * 2**20,
    "fetch.wait.max.ms": 100,
    # Prefetched records held in memory at most (librdkafka stops fetching beyond it).
    "queued.max.messages.kbytes": 32 * 2**10,
}
# Records one poll returns at most when the caller sets no limit.
POLL_RECORDS = 10_000


class Fetched:
    """Fetched messages of one partition, in offset order: their offsets and raw values as
    two parallel lists (no object per message: the consumer thread appends each message's
    two fields and nothing else)."""

    __slots__ = ("offsets", "values")

    def __init__(
        self, offsets: list[int] | None = None, values: list[bytes | None] | None = None
    ) -> None:
        self.offsets: list[int] = [] if offsets is None else offsets
        self.values: list[bytes | None] = [] if values is None else values

    def __len__(self) -> int:
        return len(self.offsets)

    def since(self, offset: int) -> Fetched:
        """The messages at `offset` and after."""
        i = bisect_left(self.offsets, offset)
        return Fetched(self.offsets[i:], self.values[i:])


class SinkConsumer:
    """The sink's Kafka consumer: confluent-kafka (librdkafka) behind a small interface.

    The sink assigns partitions itself, seeks them to the offsets stored in DuckDB and polls
    batches of records grouped by partition; it uses `assign`, `assignment`, `pause`,
    `resume`, `seek`, `seek_to_beginning`, `poll`, `beginning_offsets`, `end_offsets`,
    `partitions_for_topic` and `close`, with kafka-python's argument shapes (its
    `TopicPartition`, times in ms) and its errors (`KafkaTimeoutError` when the brokers do not
    answer in time). librdkafka fetches in a background thread, several record batches per
    partition per request and ahead of the application, so small batches (a producer sending
    a few events at a time) do not cost one round trip each; this is why the sink reads
    through it (see docs/benchmarks.md, streaming).

    A partition starts fetching only once it is sought or resumed (the sink always seeks a
    new partition to its stored offset first). Pausing is done here, not in librdkafka
    (whose pause drops what it prefetched): records of a paused partition that arrive are
    kept and returned after it resumes, unless it is sought meanwhile.
    """

    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                # Required by librdkafka; no group is joined (partitions are assigned) and no
                # offset is committed to Kafka.
                "group.id": client_id,
                "client.id": client_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                **CONFLUENT_FETCH_SETTINGS,
                # Connection failures are reported through offsets queries and silence, not
                # librdkafka's log lines on stderr.
                "log_level": 2,
            }
        )
        self._assigned: set[TopicPartition] = set()
        self._live: set[TopicPartition] = set()  # fetching in librdkafka
        self._paused: set[TopicPartition] = set()
        self._held: dict[TopicPartition, Fetched] = {}
        self._partitions: dict[str, set[int]] = {}

    # -------------------------------------------------------------- assignment and position

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Own exactly `partitions`; new ones wait for a seek (or resume) before fetching."""
        wanted = set(partitions)
        dropped = [tp for tp in self._assigned - wanted if tp in self._live]
        if dropped:
            self._consumer.incremental_unassign([_ck(tp) for tp in dropped])
        for tp in self._assigned - wanted:
            self._live.discard(tp)
            self._paused.discard(tp)
            self._held.pop(tp, None)
        self._assigned = wanted

    def pause(self, *partitions: TopicPartition) -> None:
        self._paused.update(tp for tp in partitions if tp in self._assigned)

    def resume(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._paused.discard(tp)
            if tp in self._assigned and tp not in self._live:
                self._start(tp, OFFSET_BEGINNING)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read `partition` from `offset` next (whatever was fetched beyond it is dropped)."""
        if partition not in self._assigned:
            raise ValueError(f"{partition} is not assigned")
        self._held.pop(partition, None)
        if partition in self._live:
            self._consumer.incremental_unassign([_ck(partition)])
            self._live.discard(partition)
        self._start(partition, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self.seek(tp, OFFSET_BEGINNING)

    def _start(self, partition: TopicPartition, offset: int) -> None:
        self._consumer.incremental_assign([_ck(partition, offset)])
        self._live.add(partition)

    # -------------------------------------------------------------- reading

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, Fetched]:
        """Messages of unpaused partitions, in offset order per partition, waiting at most
        `timeout_ms` (less once `max_records` are there)."""
        limit = max_records or POLL_RECORDS
        out: dict[TopicPartition, Fetched] = {}
        n = 0
        for tp in [tp for tp in self._held if tp not in self._paused]:
            records = self._held.pop(tp)
            out[tp] = records
            n += len(records)
        if not (self._live - self._paused) or n >= limit:
            if not out:
                time.sleep(timeout_ms / 1000)
            return out
        messages = self._consumer.consume(limit - n, 0 if n else timeout_ms / 1000)
        # Messages come in runs of one partition: look the partition up once per run, and
        # each partition once per poll (a trickle topic makes runs of a few messages; this
        # loop runs once per message, on the thread that also feeds the writer).
        run_topic: str | None = None
        run_partition: int | None = None
        # The `append`s of the run's partition (None: its messages are dropped).
        run: tuple[Callable[[int], None], Callable[[bytes | None], None]] | None = None
        runs: dict[tuple[str | None, int | None], Any] = {}
        for m in messages:
            error = m.error()
            if error is not None:
                if error.fatal():
                    raise KafkaError(str(error))
                continue  # transport trouble: librdkafka reconnects and refetches
            partition, topic = m.partition(), m.topic()
            if partition != run_partition or topic != run_topic:
                run_partition, run_topic = partition, topic
                run = runs.get((topic, partition), _UNSEEN)
                if run is _UNSEEN:
                    run = runs[topic, partition] = self._appends(
                        TopicPartition(topic, partition), out
                    )
            if run is not None:
                run[0](m.offset() or 0)
                run[1](m.value())
        return out

    def fetched_to(self, positions: dict[TopicPartition, int]) -> bool:
        """Every partition in `positions` (its next offset to read) is at the log end known
        from its last fetch (librdkafka's cached high watermark; no request is sent): the
        client holds nothing more of it. False while a partition's end is not known yet."""
        for tp, position in positions.items():
            try:
                _, high = self._consumer.get_watermark_offsets(_ck(tp), cached=True)
            except KafkaException:
                return False
            if high < 0 or position < high:
                return False
        return True

    def _appends(
        self, tp: TopicPartition, out: dict[TopicPartition, Fetched]
    ) -> tuple[Callable[[int], None], Callable[[bytes | None], None]] | None:
        """Where `poll` puts messages of `tp`: `out`, or held while it is paused; None (they
        are dropped) if they were fetched before an unassign or seek took effect."""
        if tp not in self._live:
            return None
        into = self._held if tp in self._paused else out
        fetched = into.get(tp)
        if fetched is None:
            fetched = into[tp] = Fetched()
        return fetched.offsets.append, fetched.values.append

    # -------------------------------------------------------------- cluster state

    def beginning_offsets(
        self, partitions: list[TopicPartition], timeout_ms: int = 2000
    ) -> dict[TopicPartition, int]:
        """Log start offset of each partition the brokers answered for."""
        return self._list_offsets(partitions, OFFSET_BEGINNING, timeout_ms)

    def end_offsets(
        self, partitions: list[TopicPartition], timeout_ms: int = 2000
    ) -> dict[TopicPartition, int]:
        """Log end offset (next offset to be written) of each partition answered for."""
        return self._list_offsets(partitions, OFFSET_END, timeout_ms)

    def _list_offsets(
        self, partitions: list[TopicPartition], which: int, timeout_ms: int
    ) -> dict[TopicPartition, int]:
        if not partitions:
            return {}
        try:
            answer = self._consumer.offsets_for_times(
                [_ck(tp, which) for tp in partitions], timeout=timeout_ms / 1000
            )
        except KafkaException as exc:
            raise KafkaTimeoutError(str(exc)) from exc
        return {
            TopicPartition(a.topic, a.partition): a.offset
            for a in answer
            if a.error is None and a.offset >= 0
        }

    def partitions_for_topic(self, topic: str, timeout_ms: int = 1000) -> set[int]:
        """The topic's partitions (the last known ones if the brokers do not answer in time;
        empty if never known)."""
        try:
            meta = self._consumer.list_topics(topic, timeout=timeout_ms / 1000)
        except KafkaException:
            return set(self._partitions.get(topic, ()))
        found = meta.topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            self._partitions[topic] = set(found.partitions)
        return set(self._partitions.get(topic, ()))

    def close(self, autocommit: bool = False) -> None:
        """Leave the cluster (nothing is committed to Kafka either way)."""
        self._consumer.close()


# `poll`'s marker for a partition not looked up yet in this poll.
_UNSEEN: Any = object()


def _ck(tp: TopicPartition, offset: int | None = None) -> ConfluentTopicPartition:
    if offset is None:
        return ConfluentTopicPartition(tp.topic, tp.partition)
    return ConfluentTopicPartition(tp.topic, tp.partition, offset)
