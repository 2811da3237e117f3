"""Streaming benchmark, side by side in one run on the embedded broker.

(a) Throughput on four traffic patterns: the events topic with 4 or 16 partitions, filled in
    bulk (large record batches) or as a trickle (record batches of 5 messages, what a producer
    sending about 1,000 events/s with default settings makes). On each, three readers of the
    whole topic: a bare kafka-python consume + `json.loads` loop, the shoplens sink (validate,
    write to DuckDB, offsets in the same transaction) and a bare confluent-kafka consume +
    `json.loads` loop. Rounds alternate between the three so machine load hits them alike;
    medians are reported. Goal per pattern: the sink at least matches the bare kafka-python
    loop and reaches 80% of the bare confluent-kafka loop.
(b) Latency at 1,000 events/s: event sent → its batch committed in DuckDB (queryable), and
    event sent → its session's score committed (`--score`, on a freshly built warehouse), and
    event sent → its session's score and category recommendation committed (the hook `--score`
    runs when the warehouse has a category model).

Run: .venv/bin/python -m bench.bench_stream [--per-partition 12000] [--rounds 3] [--seconds 20]
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Producer as ConfluentProducer

from bench.common import ROOT, machine, markdown_table, write_section
from shoplens.config import EVENTS_TOPIC
from shoplens.generate import build_world, generate_and_load, load_world
from shoplens.stream.broker import EmbeddedBroker
from shoplens.stream.producer import encode, produce, session_stream
from shoplens.stream.recommender import LiveRecommender
from shoplens.stream.scorer import LiveScorer
from shoplens.stream.sink import BatchHook, Sink, SinkConfig

CONFLUENT_TARGET = 0.80  # the sink reaches at least this share of the bare confluent loop
KAFKA_PYTHON_TARGET = 1.0  # ...and at least matches the bare kafka-python loop
QUERYABLE_TARGET_S = 1.0
SCORE_TARGET_S = 2.0
# (fill, partitions) of the throughput patterns.
PATTERNS = (("bulk", 4), ("trickle", 4), ("bulk", 16), ("trickle", 16))
# Messages per trickle record batch: what a producer at ~1,000 events/s with default settings
# makes (measured in issue 11).
TRICKLE_BATCH = 5
READERS = ("kafka-python", "sink", "confluent")
THROUGHPUT_COLUMNS = [
    "pattern",
    "events",
    "kafka-python loop",
    "confluent loop",
    "sink",
    "sink / kafka-python",
    "sink / confluent",
    "goal",
    "load avg before / after",
]
CPU_COLUMNS = ["pattern", "kafka-python loop", "sink", "confluent loop", "rounds, msg/s"]


def preload(bootstrap: str, n: int, partitions: int, fill: str) -> int:
    """Put `n` generated events on the events topic (confluent-kafka, fast); return bytes.

    `bulk`: keyed by session with 20 ms linger, so record batches are large. `trickle`:
    TRICKLE_BATCH messages to each partition in turn, then a flush; the linger (1 s) is longer
    than a round takes, so each flush sends exactly one batch of TRICKLE_BATCH messages per
    partition (a consumer sees them one batch per partition per fetch).
    """
    world = build_world(3, 2_000, 400)
    producer = ConfluentProducer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20 if fill == "bulk" else 1_000}
    )
    size = 0
    events = session_stream(
        world, n, dt.datetime(2026, 11, 21, 9), dt.timedelta(hours=2), seed=3, id_prefix="b-"
    )
    for i, (event, _) in enumerate(events):
        value = encode(event)
        size += len(value)
        if fill == "bulk":
            where: dict[str, Any] = {"key": event["user_session"].encode()}
        else:
            where = {"partition": (i // TRICKLE_BATCH) % partitions}
        while True:
            try:
                producer.produce(EVENTS_TOPIC, value=value, **where)
                break
            except BufferError:
                producer.poll(0.05)
        if fill == "trickle" and (i + 1) % (TRICKLE_BATCH * partitions) == 0:
            producer.flush()
        producer.poll(0)
    producer.flush()
    return size


def bare_loop(reader: str, bootstrap: str, n: int, group: str) -> tuple[float, float]:
    """A bare loop (`bench.bare_consumers`) in a fresh process, as a user's script would run:
    its heap holds only its client, so the garbage collector's passes stay as cheap as theirs
    (in this process they would walk the sink's and DuckDB's imported libraries too)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bare_consumers", reader, bootstrap, str(n), group],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate, us = json.loads(out)
    return rate, us


def sink_throughput(bootstrap: str, n: int, group: str, workdir: Path) -> tuple[float, float]:
    """The shoplens sink into a fresh DuckDB file, in a fresh process (`bench.sink_runner`) as
    `shoplens sink` runs and as the bare loops run: (messages/s from the first record buffered
    to the last commit, CPU us per message of the sink's process from the first batch's
    validation to the last commit). Not in this process: its CPU would include the embedded
    broker's threads, and its collector would walk this process's heap."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sink_runner",
            str(workdir / f"{group}.duckdb"),
            bootstrap,
            str(n),
            group,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rate, us, messages, rejects = json.loads(out)
    assert messages == n and rejects == 0, out
    return rate, us


class CommitClock(BatchHook):
    """Records when each event id's batch committed (wall clock), around an optional hook,
    and the writer thread's CPU time in the hook per batch (scoring, recommending)."""

    def __init__(self, inner: BatchHook | None = None) -> None:
        self.inner = inner or BatchHook()
        self.committed_at: dict[str, float] = {}
        self.batch_sizes: list[int] = []
        self.hook_cpu: list[float] = []  # seconds of CPU in prepare + write, per batch

    def prepare(self, rows: dict[str, pa.Table]) -> Any:
        events = rows.get("raw.events")
        ids = [] if events is None else events["event_id"].to_pylist()
        start = time.thread_time()
        inner = self.inner.prepare(rows)
        return ids, inner, time.thread_time() - start

    def write(self, con: Any, prepared: Any) -> None:
        start = time.thread_time()
        self.inner.write(con, prepared[1])
        self.batch_sizes.append(len(prepared[0]))
        self.hook_cpu.append(prepared[2] + time.thread_time() - start)

    def committed(self, prepared: Any) -> None:
        now = time.time()
        self.committed_at.update(dict.fromkeys(prepared[0], now))
        self.inner.committed(prepared[1])

    def close(self) -> None:
        self.inner.close()


def latency(db: Path, seconds: float, score: bool, recommend: bool = False) -> dict[str, float]:
    """p50/p95 seconds from send to commit at 1,000 events/s (sink defaults otherwise); with
    `recommend` the hook also recommends (written in the same transaction as the scores)."""
    from shoplens.warehouse import connect

    with connect(db, read_only=True) as con:
        world = load_world(con)
    sent_at: dict[str, float] = {}
    with EmbeddedBroker() as broker:
        inner: BatchHook | None = None
        if recommend:
            inner = LiveRecommender.from_warehouse(db, bootstrap=broker.bootstrap)
        elif score:
            inner = LiveScorer.from_warehouse(db, bootstrap=broker.bootstrap)
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
        "batches": len(clock.batch_sizes),
        "batch_events": statistics.mean(clock.batch_sizes) if clock.batch_sizes else 0.0,
        "hook_ms": 1e3 * statistics.mean(clock.hook_cpu) if clock.hook_cpu else 0.0,
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


@dataclass
class PatternResult:
    """Throughput of the three readers on one traffic pattern."""

    fill: str
    partitions: int
    events: int
    mib: float
    load_before: float
    load_after: float = 0.0
    rates: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in READERS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {r: [] for r in READERS})

    def median(self, reader: str) -> float:
        return statistics.median(self.rates[reader])

    def cpu_median(self, reader: str) -> float:
        return statistics.median(self.cpu[reader])

    def ratio(self, baseline: str) -> float:
        """Median of the per-round ratios sink / baseline (measured back to back)."""
        pairs = zip(self.rates["sink"], self.rates[baseline], strict=True)
        return statistics.median(s / b for s, b in pairs)

    @property
    def passed(self) -> bool:
        return (
            self.ratio("kafka-python") >= KAFKA_PYTHON_TARGET
            and self.ratio("confluent") >= CONFLUENT_TARGET
        )


def measure_pattern(
    fill: str, partitions: int, per_partition: int, rounds: int, workdir: Path
) -> PatternResult:
    """Fill a fresh broker's events topic in one pattern and time the three readers on it."""
    n = per_partition * partitions
    runs: dict[str, Any] = {
        "kafka-python": lambda *a: bare_loop("kafka-python", *a),
        "sink": sink_throughput,
        "confluent": lambda *a: bare_loop("confluent", *a),
    }
    with EmbeddedBroker(partitions=partitions) as broker:
        size = preload(broker.bootstrap, n, partitions, fill)
        result = PatternResult(fill, partitions, n, size / 2**20, os.getloadavg()[0])
        print(f"{fill}, {partitions} partitions: {n:,} events ({result.mib:.1f} MiB)", flush=True)
        for r in range(rounds):
            for reader in READERS:
                extra = (workdir,) if reader == "sink" else ()
                group = f"{reader}-{fill}-{partitions}-{r}"
                rate, us = runs[reader](broker.bootstrap, n, group, *extra)
                result.rates[reader].append(rate)
                result.cpu[reader].append(us)
            print({k: round(v[-1]) for k, v in result.rates.items()}, flush=True)
    result.load_after = os.getloadavg()[0]
    return result


def throughput_rows(
    results: list[PatternResult],
) -> tuple[list[list[object]], list[list[object]]]:
    """Rows of the throughput table (THROUGHPUT_COLUMNS) and of the CPU table (CPU_COLUMNS)."""
    rows: list[list[object]] = [
        [
            f"{res.fill}, {res.partitions} partitions",
            f"{res.events:,} ({res.mib:.1f} MiB)",
            f"{res.median('kafka-python'):,.0f}",
            f"{res.median('confluent'):,.0f}",
            f"{res.median('sink'):,.0f}",
            f"{res.ratio('kafka-python'):.0%}",
            f"{res.ratio('confluent'):.0%}",
            "**PASS**" if res.passed else "**FAIL**",
            f"{res.load_before:.1f} / {res.load_after:.1f}",
        ]
        for res in results
    ]
    cpu_rows: list[list[object]] = [
        [f"{res.fill}, {res.partitions} partitions"]
        + [
            f"{res.cpu_median(r):.1f} ({res.cpu_median(r) * res.median(r) / 1e6:.2f})"
            for r in READERS
        ]
        + [" / ".join(", ".join(f"{v / 1000:.0f}k" for v in res.rates[r]) for r in READERS)]
        for res in results
    ]
    return rows, cpu_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-partition",
        type=int,
        default=12_000,
        help="events per partition (12,000 is about 3.7 MiB, under the mock's 5 MiB cap)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-latency", action="store_true", help="throughput only")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="shoplens-bench-stream-"))
    try:
        results = [
            measure_pattern(fill, partitions, args.per_partition, args.rounds, workdir)
            for fill, partitions in PATTERNS
        ]
        rows, cpu_rows = throughput_rows(results)
        if args.no_latency:
            # Nothing is written to docs/benchmarks.md: the tables are printed for it.
            print(markdown_table(THROUGHPUT_COLUMNS, rows), end="\n\n")
            print(markdown_table(CPU_COLUMNS, cpu_rows))
            print(f"Load average: {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
            print(f"Machine: {machine()}. Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.")
            return
        db = workdir / "latency.duckdb"
        shutil.copy(built := built_warehouse(workdir), db)
        queryable = latency(db, args.seconds, score=False)
        scored = latency(built, args.seconds, score=True)
        recommended = latency(built, args.seconds, score=True, recommend=True)
        print(queryable, scored, recommended, flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    lat_rows = [
        [
            path,
            f"{res['p50']:.2f}",
            f"{res['p95']:.2f}",
            f"{res['max']:.2f}",
            f"{target:.0f} s",
            "pass" if res["p95"] <= target else "FAIL",
            f"{res['batches']:,.0f} / {res['batch_events']:,.0f}",
            f"{res['hook_ms']:.0f}" if hooked else "",
        ]
        for path, res, target, hooked in (
            ("event → queryable in DuckDB", queryable, QUERYABLE_TARGET_S, False),
            ("event → live score committed (`--score`)", scored, SCORE_TARGET_S, True),
            (
                "event → live score + category recommendation committed",
                recommended,
                SCORE_TARGET_S,
                True,
            ),
        )
    ]
    body = f"""
Command: `.venv/bin/python -m bench.bench_stream --per-partition {args.per_partition}
--rounds {args.rounds} --seconds {args.seconds:g}`. Embedded broker (librdkafka mock cluster,
loopback), a fresh one per pattern, its events topic filled with {args.per_partition:,}
generated events per partition (the mock keeps at most 5 MiB per partition). Fill "bulk":
keyed by session, 20 ms linger, large record batches. Fill "trickle": record batches of
{TRICKLE_BATCH} messages, what a producer sending about 1,000 events/s with default settings
makes ({TRICKLE_BATCH} messages to each partition in turn, then a flush, with a 1 s linger so
nothing leaves before it). Every reader reads the whole topic; rounds alternate between them.

(a) Throughput, messages/s (median of {args.rounds} rounds). Goal per pattern: the sink at least
matches the bare kafka-python loop and reaches {CONFLUENT_TARGET:.0%} of the bare
confluent-kafka loop (ratios: median of the per-round ratios, each measured back to back).

{markdown_table(THROUGHPUT_COLUMNS, rows)}

CPU µs per message of the reader's own process in its timed window (each reader runs in a
process of its own, apart from the embedded broker, so the broker's threads are counted for
none of the three; in brackets: cores busy = msg/s × CPU µs/msg), and each round's rates
(kafka-python / sink / confluent):

{markdown_table(CPU_COLUMNS, cpu_rows)}

How each reader is timed. Each reader runs in a fresh process of its own, started the same way
(`python -m`, default garbage collector settings), while the embedded broker runs in the bench's
process; each prints its rate and CPU per message as one JSON line. The bare loops are `consume
+ json.loads` only, in a process that imports only its client (`bench/bare_consumers.py`), with
the sink's fetch settings (`clients.CONSUMER_FETCH_SETTINGS`,
`clients.CONFLUENT_FETCH_SETTINGS`); their clock (wall and CPU) starts at the first message
received and stops when the last one is deserialised. They never ask for more messages than
remain (`consume(num_messages=min(10,000, remaining))`, `poll(max_records=...)`): before this
run the confluent loop asked for 10,000 and the last call waited out its 0.5 s timeout inside
the clock, which held it to about 28k msg/s on 16,000 events (the issue's own loop made 259k on
bulk 16 partitions). The sink runs as `shoplens sink` does, in a process that holds the sink and
nothing of the bench (`bench/sink_runner.py`: `Sink(SinkConfig(...))` with a hook that only
takes CPU marks; until this run it ran in the bench's process, whose CPU included the embedded
broker's threads: 15.7 CPU µs per message on trickle 4 partitions against 5.9 for the bare
confluent loop). Its clock runs from its first record buffered to its last commit, so it also
holds what the bare loops do not do: filling and draining its pipeline (the last batch's
validation and write overlap no fetching), and a checkpoint and a new open of the warehouse file
each time the writer releases it (at least once a second while a backlog lasts; the connection
that read the stored offsets at start is kept for the first batch). Its CPU (its process's) is
taken from the start of the first batch's validation to the last commit. The mock broker returns
one record batch per partition per fetch: on a trickle topic each fetch carries {TRICKLE_BATCH}
messages per partition, so a client that waits for each fetch before sending the next
(kafka-python) is bound by round trips, not CPU; librdkafka fetches ahead in its own thread.

Where the sink's time goes (thread CPU per message from `time.thread_time` around each stage,
and a timeline of each batch; one sink run of 48,000 events at a time, 2026-11-30 21:20-21:30
UTC, the sink's process in a scheduler group of its own at nice -19, so the other jobs on the
machine took little of its CPU). Bulk, 4 partitions: consumer thread 1.3-1.4 µs
(`SinkConsumer.poll` 0.9, buffering with the Arrow conversion of each poll 0.4), validation
thread 2.2 (the contract's query for plain messages, e41b80c; 3.9-4.2 with the full query),
write thread 1.4-1.6 (rows, offsets and commit; about 6 ms fixed per batch); the bare confluent
loop 4.4 in its own process. Three batches (5,000, 25,000, 18,000): the first goes to the
validation thread at once, the consumer holds the whole topic after 138-226 ms, and the last
batch is validated and written 70-96 ms after that: first record to last commit 223-322 ms,
against 200-230 ms for the bare confluent loop on the same topic. Trickle, 4 partitions:
consumer 1.2-1.9 µs (`poll` 1.2-1.7: the messages come in runs of 5 per partition), validation
2.2-2.8, write 1.6-2.3 (5-8 batches); the last commit comes 13-43 ms after the last record, so
the window is set by how fast librdkafka gets the topic from the mock broker (the last record
after 270-730 ms; on the same topic the bare confluent loop's rate varied from 87k to 203k
msg/s between runs). What holds from earlier passes: the sink freezes the imported heap for
Python's garbage collector while it runs (`gc.freeze`: every fetched message is a GC-tracked
object; consumer thread 5.3-6.7 -> 2.1-2.4 µs per message), the bare loops run in processes of
their own that import only their client (in this process the same collector slowed them), and
validation runs in a thread of its own on the batch after the one being written (DuckDB
releases the GIL); batches are written, and the scorer's hook prepares them, in order.

(b) Latency at 1,000 events/s for {args.seconds:g} s ({queryable["events"]:,} events), seconds
from the producer handing an event to kafka-python to the commit of the DuckDB transaction
holding it (and, with `--score`, its session's score; with the recommender, also its
category recommendation). Sink defaults: batches of up to 5,000 messages or 0.25 s (bigger
while the writer is busy). Hook CPU: the writer thread's CPU in the scorer (and recommender)
per batch, its validation and insert of the raw rows not included.

{
        markdown_table(
            [
                "path",
                "p50 s",
                "p95 s",
                "max s",
                "target (p95)",
                "result",
                "batches / events per batch",
                "hook CPU ms per batch",
            ],
            lat_rows,
        )
    }

Why the score rows were slow (p50 9-11 s in the previous run, under heavier load): the hooks'
cost per batch hardly depends on its size, and it was more than the batch interval. Thread CPU
in the writer per batch, 20 s with recommendations, before the changes (load 12): 275 ms in the
hooks (feature SQL and scoring 171 ms, staging 40, recommending 37) plus 39 for the
transaction, so 0.25 s batches needed more than a core; batches grew to 1,100 events and each
waited for the one before (p50 1.57 s, p95 4.43 s), and the less CPU the machine left the sink,
the longer they grew. Of the 171 ms, 106 went to `executemany` inserting the batch's ~600
touched sessions one statement at a time; they are now read with one query (2 ms). The intent
forest predicts on one thread (14 against 21 ms of process CPU for 584 sessions). The staging
SQL of stg_shop__events, the feature query and the recommender's feature query were planned
again at every batch (DuckDB 2.0 re-plans a statement that reads a table; planning the staging
SQL took about 30 of its 35-45 ms); they now read registered Arrow sources (the batch, the
category map, the scored sessions' events, the customers) and are prepared once: staging 35-45
-> 13-21 ms, scoring 40-45 -> 27-35 ms per 1,000-event batch. Same 20 s run after all of it, at
load 21: hook CPU 107 ms per batch (staging 21, scoring 40 of which predicting 16, recommending
34, the rest writing the scores and recommendations; besides, validating the raw rows took 12
ms and the whole transaction 42), p50 1.53 s / p95 2.57 s, with wall times about 4 times the
CPU times (the other jobs' share of the 2 cores).

Load average when the run started: {load:.1f} on {os.cpu_count()} cores (other jobs share
this machine; on a busy one the figures vary by tens of percent between runs).
"""
    write_section("stream", "Streaming: sink throughput and latency", body)
    print(body)


if __name__ == "__main__":
    main()
