"""Records waiting for the writer: one `TopicBuffer` per topic, handed over as a `Batch`."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Batch:
    """Records handed to the writer, with the offsets they advance."""

    tables: dict[str, pa.Table]  # topic -> raw records (BATCH_SCHEMA)
    next_offsets: dict[TopicPartition, int]
    expected_stored: dict[TopicPartition, int | None]
    messages: int
    full: bool  # handed off by size, not by time: records are arriving faster than written
    gaps: list[Gap] = field(default_factory=list)  # deleted offsets these next_offsets skip
