"""Streaming benchmark, side by side in one run on the embedded broker.

(a) Throughput over the same preloaded topic: a bare kafka-python consume loop that only
    deserialises (the client's ceiling), the shoplens sink (validate, write to DuckDB, commit
    offsets in the same transaction), and confluent-kafka's consumer (the broker path's limit).
    Rounds alternate between the three so machine load hits them alike; medians are reported.
(b) Latency at 1,000 events/s: event sent → its batch committed in DuckDB (queryable), and
    event sent → its session's score committed (`--score`, on a freshly built warehouse).

Run: .venv/bin/python -m bench.bench_stream [--events 200000] [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import Producer as ConfluentProducer
from kafka import KafkaConsumer

from bench.common import ROOT, markdown_table, write_section
from shoplens.config import EVENTS_TOPIC
from shoplens.generate import build_world, generate_and_load, load_world
from shoplens.stream.broker import EmbeddedBroker
from shoplens.stream.clients import CONSUMER_FETCH_SETTINGS, KAFKA_API_VERSION
from shoplens.stream.producer import encode, produce, session_stream
from shoplens.stream.scorer import LiveScorer
from shoplens.stream.sink import BatchHook, Sink, SinkConfig

THROUGHPUT_TARGET = 0.80
QUERYABLE_TARGET_S = 1.0
SCORE_TARGET_S = 2.0
PARTITIONS = 16  # keeps every mock partition far below its 5 MiB retention


def preload(bootstrap: str, n: int) -> int:
    """Put `n` generated events on the events topic (confluent-kafka, fast); return bytes."""
    world = build_world(3, 2_000, 400)
    producer = ConfluentProducer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    size = 0
    for event, _ in session_stream(
        world, n, dt.datetime(2026, 11, 21, 9), dt.timedelta(hours=2), seed=3, id_prefix="b-"
    ):
        value = encode(event)
        size += len(value)
        while True:
            try:
                producer.produce(EVENTS_TOPIC, value=value, key=event["user_session"].encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush()
    return size


def cpu_per_message(run: Any, *args: Any) -> tuple[float, float]:
    """(messages/s, CPU microseconds per message of the whole process) of one run."""
    before = time.process_time()
    rate = run(*args)
    n = args[1]
    return rate, (time.process_time() - before) * 1e6 / n


def bare_kafka_python(bootstrap: str, n: int, group: str) -> float:
    """kafka-python poll loop that only deserialises: messages/s."""
    consumer = KafkaConsumer(
        EVENTS_TOPIC,
        bootstrap_servers=bootstrap,
        api_version=KAFKA_API_VERSION,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **CONSUMER_FETCH_SETTINGS,
    )
    seen, first = 0, None
    try:
        while seen < n:
            for msgs in consumer.poll(timeout_ms=500).values():
                if first is None:
                    first = time.perf_counter()
                for m in msgs:
                    json.loads(m.value)
                seen += len(msgs)
        return seen / (time.perf_counter() - first)
    finally:
        consumer.close()


def confluent(bootstrap: str, n: int, group: str) -> float:
    """confluent-kafka consume loop that deserialises: messages/s."""
    consumer = ConfluentConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([EVENTS_TOPIC])
    seen, first = 0, None
    try:
        while seen < n:
            msgs = consumer.consume(num_messages=10_000, timeout=0.5)
            if msgs and first is None:
                first = time.perf_counter()
            for m in msgs:
                if m.error() is None:
                    json.loads(m.value())
                    seen += 1
        return seen / (time.perf_counter() - first)
    finally:
        consumer.close()


def sink_throughput(bootstrap: str, n: int, group: str, workdir: Path) -> float:
    """The shoplens sink into a fresh DuckDB file: messages/s, first record to last commit."""
    db = workdir / f"{group}.duckdb"
    sink = Sink(
        SinkConfig(
            db=db, bootstrap=bootstrap, group=group, topics=(EVENTS_TOPIC,), stop_when_idle=1.0
        )
    )
    stats = sink.run()
    assert stats.messages == n and stats.rejects == 0, stats.line()
    return stats.throughput


class CommitClock(BatchHook):
    """Records when each event id's batch committed (wall clock), around an optional hook."""

    def __init__(self, inner: BatchHook | None = None) -> None:
        self.inner = inner or BatchHook()
        self.committed_at: dict[str, float] = {}

    def prepare(self, rows: dict[str, pa.Table]) -> Any:
        events = rows.get("raw.events")
        ids = [] if events is None else events["event_id"].to_pylist()
        return ids, self.inner.prepare(rows)

    def write(self, con: Any, prepared: Any) -> None:
        self.inner.write(con, prepared[1])

    def committed(self, prepared: Any) -> None:
        now = time.time()
        self.committed_at.update(dict.fromkeys(prepared[0], now))
        self.inner.committed(prepared[1])

    def close(self) -> None:
        self.inner.close()


def latency(db: Path, seconds: float, score: bool) -> dict[str, float]:
    """p50/p95 seconds from send to commit at 1,000 events/s (sink defaults otherwise)."""
    from shoplens.warehouse import connect

    with connect(db, read_only=True) as con:
        world = load_world(con)
    sent_at: dict[str, float] = {}
    with EmbeddedBroker() as broker:
        inner = LiveScorer.from_warehouse(db, bootstrap=broker.bootstrap) if score else None
        clock = CommitClock(inner)
        sink = Sink(SinkConfig(db=db, bootstrap=broker.bootstrap), hook=clock)
        thread = threading.Thread(target=sink.run, daemon=True)
        thread.start()
        time.sleep(2.0)  # let the group settle: latency is about the steady state
        produce(
            broker.bootstrap,
            world,
            rate=1_000,
            duration=seconds,
            seed=11,
            on_sent=lambda e: sent_at.__setitem__(e["event_id"], time.time()),
        )
        sink.config.stop_when_idle = 1.0
        thread.join()
    delays = sorted(clock.committed_at[i] - t for i, t in sent_at.items())
    assert len(delays) == len(sent_at)
    q = statistics.quantiles(delays, n=100)
    return {
        "events": len(delays),
        "p50": statistics.median(delays),
        "p95": q[94],
        "max": delays[-1],
    }


def built_warehouse(workdir: Path) -> Path:
    """A small generated warehouse after dbt seed + build (for the purchase-intent model)."""
    db = workdir / "built.duckdb"
    generate_and_load(
        db, sessions=6_000, seed=7, days=365, end=dt.date(2026, 10, 31), progress=False
    )
    env = {**os.environ, "SHOPLENS_DB": str(db), "DBT_PROFILES_DIR": str(ROOT)}
    dbt = str(Path(sys.executable).with_name("dbt"))
    for args in (["seed"], ["build"]):
        subprocess.run(
            [
                dbt,
                *args,
                "--project-dir",
                str(ROOT),
                "--target-path",
                str(workdir / "target"),
                "--log-path",
                str(workdir / "logs"),
                "-q",
            ],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="shoplens-bench-stream-"))
    try:
        figures: dict[str, list[float]] = {"bare": [], "sink": [], "confluent": []}
        cpu: dict[str, list[float]] = {"bare": [], "sink": [], "confluent": []}
        with EmbeddedBroker(partitions=PARTITIONS) as broker:
            size = preload(broker.bootstrap, args.events)
            print(f"preloaded {args.events:,} events ({size / 2**20:.1f} MiB)", flush=True)
            for r in range(args.rounds):
                for name, run, extra in (
                    ("bare", bare_kafka_python, ()),
                    ("sink", sink_throughput, (workdir,)),
                    ("confluent", confluent, ()),
                ):
                    rate, us = cpu_per_message(
                        run, broker.bootstrap, args.events, f"{name}-{r}", *extra
                    )
                    figures[name].append(rate)
                    cpu[name].append(us)
                print(
                    {k: round(v[-1]) for k, v in figures.items()},
                    {k: round(v[-1], 1) for k, v in cpu.items()},
                    flush=True,
                )
        med = {k: statistics.median(v) for k, v in figures.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        # Each round runs the ceiling and the sink back to back: compare within rounds.
        ratios = [s / b for s, b in zip(figures["sink"], figures["bare"], strict=True)]
        ratio = statistics.median(ratios)
        db = workdir / "latency.duckdb"
        shutil.copy(built := built_warehouse(workdir), db)
        queryable = latency(db, args.seconds, score=False)
        scored = latency(built, args.seconds, score=True)
        print(queryable, scored, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    rows = [
        [
            "kafka-python, consume + json.loads (ceiling)",
            f"{med['bare']:,.0f}",
            ", ".join(f"{v:,.0f}" for v in figures["bare"]),
            "100%",
            f"{med_cpu['bare']:.1f}",
            f"{med['bare'] * med_cpu['bare'] / 1e6:.2f}",
        ],
        [
            "shoplens sink: validate in DuckDB, write, offsets in the same transaction",
            f"{med['sink']:,.0f}",
            ", ".join(f"{v:,.0f}" for v in figures["sink"]),
            f"{med['sink'] / med['bare']:.0%}",
            f"{med_cpu['sink']:.1f}",
            f"{med['sink'] * med_cpu['sink'] / 1e6:.2f}",
        ],
        [
            "confluent-kafka, consume + json.loads (broker path limit)",
            f"{med['confluent']:,.0f}",
            ", ".join(f"{v:,.0f}" for v in figures["confluent"]),
            f"{med['confluent'] / med['bare']:.0%}",
            f"{med_cpu['confluent']:.1f}",
            f"{med['confluent'] * med_cpu['confluent'] / 1e6:.2f}",
        ],
    ]
    lat_rows = [
        [
            "event → queryable in DuckDB",
            f"{queryable['p50']:.2f}",
            f"{queryable['p95']:.2f}",
            f"{queryable['max']:.2f}",
            f"{QUERYABLE_TARGET_S:.0f} s",
            "pass" if queryable["p95"] <= QUERYABLE_TARGET_S else "FAIL",
        ],
        [
            "event → live score committed (`--score`)",
            f"{scored['p50']:.2f}",
            f"{scored['p95']:.2f}",
            f"{scored['max']:.2f}",
            f"{SCORE_TARGET_S:.0f} s",
            "pass" if scored["p95"] <= SCORE_TARGET_S else "FAIL",
        ],
    ]
    body = f"""
Command: `.venv/bin/python -m bench.bench_stream --events {args.events} --rounds {args.rounds}
--seconds {args.seconds:g}`. Embedded broker (librdkafka mock cluster, loopback), events topic
with {PARTITIONS} partitions preloaded with {args.events:,} generated events
({size / 2**20:.1f} MiB of JSON). Rounds alternate between the three consumers.

(a) Throughput, messages/s (median of {args.rounds} rounds; each round shown).
Target: the sink keeps at least {THROUGHPUT_TARGET:.0%} of the kafka-python ceiling. Median of
the per-round ratios (sink / ceiling measured back to back:
{", ".join(f"{r:.0%}" for r in ratios)}): **{ratio:.0%}, {
        "pass" if ratio >= THROUGHPUT_TARGET else "FAIL"
    }**.

{
        markdown_table(
            ["consumer", "median msg/s", "rounds", "of ceiling", "CPU µs/msg", "cores busy"], rows
        )
    }

"Cores busy" is msg/s × CPU µs/msg: the bare loop decodes JSON in its only thread and, when
this figure is well under 1, spends the rest of its time waiting for fetch responses, so it is
not CPU-bound and its rate varies from run to run (40k to 107k msg/s were seen on this machine
on 2026-11-21). The sink's consumer thread only collects raw bytes and DuckDB decodes them on
the other core, which is how the sink can run faster than this "ceiling". Judge the sink by its
own rate as well as by the ratio.

kafka-python checks CRC-32C in pure Python unless the `crc32c` package is installed; shoplens
pins it, which lifts the kafka-python ceiling well above the 25-28k msg/s the design notes
measured without it. The sink's figure runs from its first record to its last commit, so it
includes filling and draining the pipeline. "CPU µs/msg" is the process's CPU time (all
threads, start-up included) per message. The sink spends more CPU per message than the ceiling
and reaches its rate only with two cores: the consumer thread (kafka-python, pure Python)
keeps one busy, while the writer thread validates and writes in DuckDB, which releases the
GIL, on the other. While it works off a backlog the writer keeps its DuckDB connection across
batches (reopening the file per batch cost a checkpoint each time) and releases the file at
least every second and whenever the stream goes quiet; the GIL switch interval is 1 ms while
the sink runs, so the writer gets the GIL back promptly after each DuckDB call. When other
jobs take one of the two cores, the sink loses far more than the single-threaded ceiling.

(b) Latency at 1,000 events/s for {args.seconds:g} s ({queryable["events"]:,} events), seconds
from the producer handing an event to kafka-python to the commit of the DuckDB transaction
holding it (and, with `--score`, its session's score). Sink defaults: batches of up to
5,000 messages or 0.25 s (bigger while the writer is busy).

{markdown_table(["path", "p50 s", "p95 s", "max s", "target (p95)", "result"], lat_rows)}

Load average when the run started: {load:.1f} on {os.cpu_count()} cores (other jobs share
this machine; on a busy one the figures vary by tens of percent between runs).
"""
    write_section("stream", "Streaming: sink throughput and latency", body)
    print(body)


if __name__ == "__main__":
    main()
