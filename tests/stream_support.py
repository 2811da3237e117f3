"""Shared by the streaming tests: stream a generated world through the sink with a batch hook."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from kafka import KafkaConsumer, TopicPartition

from shoplens.generate import load_world
from shoplens.stream.broker import EmbeddedBroker
from shoplens.stream.clients import KAFKA_API_VERSION
from shoplens.stream.producer import ProduceStats, produce
from shoplens.stream.sink import BatchHook, Sink, SinkConfig


def stream_through_hook(
    built_warehouse: Path,
    db: Path,
    make_hook: Callable[[Path, str], BatchHook],
    topic: str,
) -> tuple[ProduceStats, list[Any]]:
    """Copy the built warehouse to `db`, run the sink on it with `make_hook(db, bootstrap)` as its
    batch hook while 3 s of events (seed 9, 2,000/s) are produced, stop it once idle, and return
    what was produced and every record on `topic`, from the beginning."""
    shutil.copy(built_warehouse, db)
    with duckdb.connect(str(db), read_only=True) as con:
        world = load_world(con)
    with EmbeddedBroker() as broker:
        hook = make_hook(db, broker.bootstrap)
        sink = Sink(SinkConfig(db=db, bootstrap=broker.bootstrap, batch_interval=0.2), hook=hook)
        stop = threading.Event()
        thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
        thread.start()
        produced = produce(broker.bootstrap, world, rate=2_000, duration=3, seed=9)
        sink.config.stop_when_idle = 2.0
        thread.join(120)
        assert not thread.is_alive()
        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=KAFKA_API_VERSION)
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        while sum(consumer.position(tp) for tp in parts) < sum(
            consumer.end_offsets(parts).values()
        ):
            for msgs in consumer.poll(timeout_ms=500).values():
                records += msgs
        consumer.close()
    return produced, records
