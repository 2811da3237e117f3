"""The sink's writer on its own (no broker): validation overlaps the write before it, batches
are written and hooked in order, a batch queued behind a stale one is not written, and the file
stays open across batches handed over back to back."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from kafka import TopicPartition

from shoplens.config import EVENTS_TOPIC
from shoplens.stream.contract import BATCH_SCHEMA
from shoplens.stream.sink import BatchHook, SinkStore
from shoplens.stream.sink.buffer import Batch
from shoplens.stream.sink.store import PreparedBatch, WriteResult
from shoplens.stream.sink.writer import Writer

TP = TopicPartition(EVENTS_TOPIC, 0)


def batch(first: int, n: int, expected: int | None, full: bool = True) -> Batch:
    """`n` valid events at offsets first.. of partition 0, expecting `expected` stored."""
    payloads = [
        json.dumps(
            {
                "event_id": f"w-{o}",
                "event_time": "2026-11-21T09:00:00",
                "event_type": "page_view",
                "user_id": 1,
            }
        ).encode()
        for o in range(first, first + n)
    ]
    table = pa.table(
        {
            "partition": pa.array([0] * n, pa.int32()),
            "kafka_offset": pa.array(range(first, first + n), pa.int64()),
            "payload": pa.array(payloads, pa.binary()),
        },
        schema=BATCH_SCHEMA,
    )
    return Batch({EVENTS_TOPIC: table}, {TP: first + n}, {TP: expected}, n, full=full)


class SlowStore:
    """A store that records when each step starts and ends (validation 0.2 s, write 0.3 s)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def note(self, what: str, b: Batch) -> None:
        with self.lock:
            self.log.append((what, next(iter(b.next_offsets.values()))))

    def open(self) -> Any:
        with self.lock:
            self.log.append(("open", 0))
        return duckdb.connect(":memory:")

    def validate(self, b: Batch) -> PreparedBatch:
        self.note("validate", b)
        time.sleep(0.2)
        self.note("validated", b)
        return PreparedBatch(b, {}, [])

    def prepare_hook(self, prepared: PreparedBatch) -> None:
        self.note("hook", prepared.batch)

    def write(self, con: Any, prepared: PreparedBatch) -> WriteResult:
        self.note("write", prepared.batch)
        time.sleep(0.3)
        self.note("written", prepared.batch)
        return WriteResult(prepared.batch)


def test_validation_overlaps_the_write_before_it_and_order_holds() -> None:
    store = SlowStore()
    writer = Writer(store, report=lambda line: None, on_lock_wait=lambda: None)  # type: ignore[arg-type]
    first, second = batch(0, 2, None), batch(2, 2, 2)
    writer.submit(first)
    assert writer.busy and not writer.ready
    assert writer.wait_ready(5)  # the first batch went on to the write thread
    writer.submit(second)
    writer.close()
    log = store.log
    # The file was opened while the first (full) batch was validated, not after.
    assert log.index(("open", 0)) < log.index(("validated", 2))
    # The second batch was validated while the first was written...
    assert log.index(("validate", 4)) < log.index(("written", 2))
    # ...but hooked and written only after it.
    assert log.index(("written", 2)) < log.index(("hook", 4)) < log.index(("write", 4))
    assert [r.batch.next_offsets[TP] for r in writer.results()] == [2, 4]
    assert not writer.busy


def test_a_batch_behind_a_stale_one_is_not_written(tmp_path: Path) -> None:
    """Another sink under the same name stored offset 5 meanwhile: the first batch (expecting
    nothing stored) is stale, and so is the second, validated while the first was written
    (it expects the first one's offsets). Neither writes a row."""
    db = tmp_path / "w.duckdb"
    store = SinkStore(db, "g", (EVENTS_TOPIC,), BatchHook())
    with store.connection() as con:
        con.execute(
            "insert into raw.sink_offsets values ('g', ?, 0, 5, now()::timestamp)", [EVENTS_TOPIC]
        )
    writer = Writer(store, report=lambda line: None, on_lock_wait=lambda: None)
    writer.submit(batch(0, 3, None))
    assert writer.wait_ready(10)
    writer.submit(batch(3, 3, 3))
    writer.close()
    store.close()
    results = writer.results()
    assert [r.stale for r in results] == [[TP], [TP]]
    assert [r.error for r in results] == [None, None]
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from raw.events").fetchone() == (0,)
        assert con.execute("select next_offset from raw.sink_offsets").fetchall() == [(5,)]


def test_batches_land_in_order_with_their_offsets(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    store = SinkStore(db, "g", (EVENTS_TOPIC,), BatchHook())
    writer = Writer(store, report=lambda line: None, on_lock_wait=lambda: None)
    for first in range(0, 12, 3):
        assert writer.wait_ready(10)
        writer.submit(batch(first, 3, first or None, full=first < 9))
    writer.close()
    store.close()
    assert [(r.stale, r.error, r.rows) for r in writer.results()] == [
        ([], None, {"raw.events": 3})
    ] * 4
    with duckdb.connect(str(db), read_only=True) as con:
        ids = [r[0] for r in con.execute("select event_id from raw.events").fetchall()]
        assert sorted(ids) == sorted(f"w-{o}" for o in range(12))
        assert con.execute("select next_offset from raw.sink_offsets").fetchall() == [(12,)]


def test_the_file_stays_open_while_the_next_batch_is_handed_over() -> None:
    """Batches of a trickle backlog are not full, but while the next one is already handed
    over the file stays open (releasing costs a checkpoint, and the next write an open)."""
    store = SlowStore()
    writer = Writer(store, report=lambda line: None, on_lock_wait=lambda: None)  # type: ignore[arg-type]
    writer.submit(batch(0, 2, None, full=False))
    assert writer.wait_ready(5)
    writer.submit(batch(2, 2, 2, full=False))  # validated while the first is written
    writer.close()
    assert [r.batch.next_offsets[TP] for r in writer.results()] == [2, 4]
    assert store.log.count(("open", 0)) == 1


def test_a_reader_in_the_same_process_makes_the_file_busy_not_an_error(tmp_path: Path) -> None:
    """A read-only connection this process holds (a reader beside an embedded sink) refuses the
    writer's connection; the sink must see a busy file and retry, not die (found under load:
    DuckDB's "different configuration" error killed the sink thread)."""
    from shoplens.stream.sink import WarehouseBusy

    db = tmp_path / "w.duckdb"
    store = SinkStore(db, "g", (EVENTS_TOPIC,))
    store.open().close()
    with duckdb.connect(str(db), read_only=True):
        try:
            store.open().close()
        except WarehouseBusy as busy:
            assert "different configuration" in str(busy)
        else:
            raise AssertionError("the writer opened a file a reader of this process holds")
    store.open().close()
