"""Gaps: offsets the broker deleted before the sink read them.

Kafka deletes old messages by retention (the embedded broker keeps about 5 MiB per partition);
a consumer whose next offset is older than the partition's log start offset can no longer read
what lies between. The sink looks for that in three places, so that finding a gap does not
depend on timing:

- when it takes a partition (start-up, new partitions): the offset stored in the warehouse
  against the partition's log start;
- whenever the consumer hands over records that do not start at the next expected offset (the
  client jumped, e.g. after an out-of-range reset): the expected offset against the log start
  asked for at that moment;
- whenever the partition is behind its log end (each lag check): the expected offset against
  the log start, which catches a partition whose remaining messages were all deleted.

Each gap is written to `raw.sink_gaps` in the same transaction as the offsets that move past
it, so a sink killed before that commit finds the same gap again, and never twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from kafka import TopicPartition


@dataclass(frozen=True)
class Gap:
    """Offsets `first_offset`..`last_offset` (inclusive) of one partition, deleted unread."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int

    @property
    def missing(self) -> int:
        """Messages in the gap."""
        return self.last_offset - self.first_offset + 1

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    def warning(self) -> str:
        """The line the sink prints when it finds the gap."""
        return (
            f"sink: WARNING: {self.topic}[{self.partition}] offsets {self.first_offset:,}-"
            f"{self.last_offset:,} ({self.missing:,} messages) were deleted by the broker "
            "before the sink read them; recording the gap in raw.sink_gaps"
        )


def find_gap(
    tp: TopicPartition, expected: int, log_start: int, first_received: int | None = None
) -> Gap | None:
    """The gap between the next offset the sink needs and what the broker still has.

    `log_start` is the partition's log start offset asked for now. `first_received` is the
    offset of the first record the consumer handed over after a jump, if any: a record that
    arrived was not deleted, and offsets between the log start and it that never arrive are
    not messages (transaction markers, compaction), so they are no gap. Log starts only move
    forward, so an offset at or after the log start was never deleted.
    """
    end = log_start if first_received is None else min(log_start, first_received)
    if end <= expected:
        return None
    return Gap(tp.topic, tp.partition, expected, end - 1)


def insert_gaps(
    con: duckdb.DuckDBPyConnection, sink: str, gaps: list[Gap], now: dt.datetime
) -> None:
    """Append `gaps` to raw.sink_gaps (inside the caller's transaction)."""
    if not gaps:
        return
    rows = pa.table(
        {
            "topic": pa.array([g.topic for g in gaps], pa.string()),
            "partition": pa.array([g.partition for g in gaps], pa.int32()),
            "first_offset": pa.array([g.first_offset for g in gaps], pa.int64()),
            "last_offset": pa.array([g.last_offset for g in gaps], pa.int64()),
        }
    )
    con.register("_shoplens_gaps", rows)
    try:
        con.execute(
            "insert into raw.sink_gaps (consumer_group, topic, partition, first_offset, "
            "last_offset, detected_at) select ?, topic, partition, first_offset, last_offset, "
            "?::timestamp from _shoplens_gaps",
            [sink, now],
        )
    finally:
        con.unregister("_shoplens_gaps")
