"""Records waiting for the writer: one `TopicBuffer` per topic, handed over as a `Batch`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from kafka import TopicPartition

from shoplens.stream.contract import BATCH_SCHEMA
from shoplens.stream.gaps import Gap


class TopicBuffer:
    """Records of one topic waiting for the next flush, as parallel lists."""

    def __init__(self) -> None:
        self.partitions: list[int] = []
        self.offsets: list[int] = []
        self.payloads: list[bytes | None] = []
        # Last buffered offset of each partition (records come in ascending offset order).
        self.last: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, partition: int, records: list[Any]) -> None:
        """Append one partition's records (objects with `offset` and `value`), in order."""
        self.partitions.extend([partition] * len(records))
        self.offsets.extend([r.offset for r in records])
        self.payloads.extend([r.value for r in records])
        self.last[partition] = records[-1].offset

    def clear(self) -> None:
        self.partitions, self.offsets, self.payloads, self.last = [], [], [], {}

    def drop_partitions(self, partitions: set[int]) -> None:
        self.last = {p: o for p, o in self.last.items() if p not in partitions}
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


@dataclass
class Batch:
    """Records handed to the writer, with the offsets they advance."""

    tables: dict[str, pa.Table]  # topic -> raw records (BATCH_SCHEMA)
    next_offsets: dict[TopicPartition, int]
    expected_stored: dict[TopicPartition, int | None]
    messages: int
    full: bool  # handed off by size, not by time: records are arriving faster than written
    gaps: list[Gap] = field(default_factory=list)  # deleted offsets these next_offsets skip
