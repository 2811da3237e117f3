"""Records waiting for the writer: one `TopicBuffer` per topic, handed over as a `Batch`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from kafka import TopicPartition

from shoplens.stream.clients import Fetched
from shoplens.stream.contract import BATCH_SCHEMA
from shoplens.stream.gaps import Gap


class TopicBuffer:
    """Records of one topic waiting for the next flush, as Arrow record batches.

    `add` appends a partition's fetched messages to plain lists; `seal` turns what was added
    into one record batch (the consumer seals after each poll, so the Arrow conversion is
    done while records arrive, not when the writer is waiting for the batch).
    """

    def __init__(self) -> None:
        self.chunks: list[pa.RecordBatch] = []
        self.sealed = 0  # rows in `chunks`
        self.partitions: list[int] = []
        self.offsets: list[int] = []
        self.payloads: list[bytes | None] = []
        # Last buffered offset of each partition (records come in ascending offset order).
        self.last: dict[int, int] = {}

    def __len__(self) -> int:
        return self.sealed + len(self.offsets)

    def add(self, partition: int, records: Fetched) -> None:
        """Append one partition's fetched messages, in order."""
        self.partitions.extend([partition] * len(records))
        self.offsets.extend(records.offsets)
        self.payloads.extend(records.values)
        self.last[partition] = records.offsets[-1]

    def seal(self) -> None:
        """Convert the records added since the last seal into one Arrow record batch."""
        if self.offsets:
            self.chunks.append(
                pa.record_batch(
                    [
                        pa.array(self.partitions, pa.int32()),
                        pa.array(self.offsets, pa.int64()),
                        pa.array(self.payloads, pa.binary()),
                    ],
                    schema=BATCH_SCHEMA,
                )
            )
            self.sealed += len(self.offsets)
            self.partitions, self.offsets, self.payloads = [], [], []

    def clear(self) -> None:
        self.chunks, self.sealed, self.last = [], 0, {}
        self.partitions, self.offsets, self.payloads = [], [], []

    def drop_partitions(self, partitions: set[int]) -> None:
        self.seal()
        self.last = {p: o for p, o in self.last.items() if p not in partitions}
        drop = pa.array(sorted(partitions), pa.int32())
        self.chunks = [
            chunk.filter(pc.invert(pc.is_in(chunk["partition"], value_set=drop)))
            for chunk in self.chunks
        ]
        self.sealed = sum(chunk.num_rows for chunk in self.chunks)

    def table(self) -> pa.Table:
        self.seal()
        return pa.Table.from_batches(self.chunks, schema=BATCH_SCHEMA)


@dataclass
class Batch:
    """Records handed to the writer, with the offsets they advance."""

    tables: dict[str, pa.Table]  # topic -> raw records (BATCH_SCHEMA)
    next_offsets: dict[TopicPartition, int]
    expected_stored: dict[TopicPartition, int | None]
    messages: int
    full: bool  # handed off by size, not by time: records are arriving faster than written
    gaps: list[Gap] = field(default_factory=list)  # deleted offsets these next_offsets skip
