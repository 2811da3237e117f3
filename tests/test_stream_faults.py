"""The sink under faults, against the embedded broker: messages the broker deleted before the
sink read them (retention) are recorded as gaps, never skipped silently; start-up, shutdown and
a broker that goes away are bounded in time and end with a stated exit code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from kafka import KafkaConsumer, TopicPartition

from shoplens.config import EVENTS_TOPIC, TRANSACTIONS_TOPIC
from shoplens.generate import World, build_world
from shoplens.reports.content import Table
from shoplens.reports.data import open_report_data
from shoplens.reports.pages import quality
from shoplens.stream.broker import EmbeddedBroker
from shoplens.stream.clients import KAFKA_API_VERSION, Fetched
from shoplens.stream.gaps import Gap, find_gap
from shoplens.stream.producer import produce
from shoplens.stream.sink import EXIT_GAPS, EXIT_KAFKA, Sink, SinkConfig
from shoplens.warehouse import ensure_raw_schema

pytestmark = pytest.mark.kafka

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))
GROUP = "shoplens-sink"
HOLD_FILE = """
import sys, time
from shoplens.warehouse import open_connection
con = open_connection(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    # One partition per topic: a few tens of thousands of events overflow it (the mock keeps
    # about 5 MiB per partition), which keeps the retention tests fast.
    with EmbeddedBroker(partitions=1) as b:
        yield b


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(11, 400, 150)


def send(broker: EmbeddedBroker, world: World, n: int, seed: int, sent: list[str]) -> None:
    """Produce about `n` events (and their order lines); their ids go to `sent` in offset
    order (one partition, one idempotent producer)."""
    produce(
        broker.bootstrap,
        world,
        rate=40_000,
        duration=n / 40_000,
        seed=seed,
        id_prefix=f"f{seed}-",
        on_sent=lambda event: sent.append(event["event_id"]),
    )


def log_range(bootstrap: str, topic: str) -> tuple[int, int]:
    """(log start, log end) of partition 0 of `topic`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=KAFKA_API_VERSION)
    try:
        tp = TopicPartition(topic, 0)
        return consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()


def sink_cli(db: Path, bootstrap: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [SHOPLENS, "sink", "--db", str(db), "--bootstrap", bootstrap, "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[dict, str, float]:
    """Wait for a sink process: (JSON summary, stderr, seconds waited)."""
    start = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return (json.loads(out) if out.strip() else {}), err, time.monotonic() - start


def last_error(err: str) -> str:
    """The one `shoplens: error:` line (there must be exactly one, and no traceback)."""
    lines = [line for line in err.splitlines() if line.startswith("shoplens: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def warehouse(db: Path) -> SimpleNamespace:
    with duckdb.connect(str(db), read_only=True) as con:
        return SimpleNamespace(
            ids={r[0] for r in con.execute("select event_id from raw.events").fetchall()},
            events=con.execute("select count(*) from raw.events").fetchone()[0],
            lines=con.execute("select count(*) from raw.transactions").fetchone()[0],
            rejects=con.execute("select count(*) from raw.rejects").fetchone()[0],
            gaps=con.execute(
                "select consumer_group, topic, partition, first_offset, last_offset "
                "from raw.sink_gaps order by topic, partition, first_offset"
            ).fetchall(),
            offsets=dict(
                con.execute(
                    "select topic, next_offset from raw.sink_offsets where partition = 0"
                ).fetchall()
            ),
        )


def wait_until(condition: object, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def landed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("select count(*) from raw.events").fetchone()[0]
    except duckdb.Error:  # the sink holds the file (or has not created the table yet)
        return -1


# ------------------------------------------------------------------------------ gaps


def test_find_gap_is_what_lies_before_the_log_start_and_the_first_record() -> None:
    tp = TopicPartition("t", 2)
    assert find_gap(tp, 100, 100) is None  # nothing deleted
    assert find_gap(tp, 100, 40) is None  # log start behind the sink
    assert find_gap(tp, 100, 250) == Gap("t", 2, 100, 249)
    assert find_gap(tp, 100, 250).missing == 150
    # A record at 180 arrived, so it was not deleted: the gap ends before it.
    assert find_gap(tp, 100, 250, first_received=180) == Gap("t", 2, 100, 179)
    # Offsets skipped although the log starts before them are no messages (transaction
    # markers, compaction): no gap.
    assert find_gap(tp, 100, 90, first_received=105) is None


def test_retention_overflow_while_the_sink_is_stopped_is_recorded_as_a_gap(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    send(broker, world, 1_000, seed=1, sent=sent)
    first = sink_cli(db, broker.bootstrap, "--stop-when-idle", "1")
    summary, err, _ = finish(first)
    assert first.returncode == 0, err[-3000:]
    assert summary["gaps"] == 0 and summary["rows"]["raw.events"] == 1_000
    stored = warehouse(db).offsets[EVENTS_TOPIC]
    assert stored == 1_000
    # The sink is stopped while 30,000 more events arrive: more than the partition keeps.
    send(broker, world, 30_000, seed=2, sent=sent)
    start, end = log_range(broker.bootstrap, EVENTS_TOPIC)
    assert end == len(sent) == 31_000 and start > stored  # the broker deleted unread events
    line_start, line_end = log_range(broker.bootstrap, TRANSACTIONS_TOPIC)
    assert line_start == 0  # the order lines all fit

    second = sink_cli(db, broker.bootstrap, "--stop-when-idle", "1")
    summary, err, _ = finish(second)
    assert second.returncode == EXIT_GAPS == 3, err[-3000:]
    assert summary["gaps"] == 1 and summary["missing"] == start - stored
    assert summary["exit_code"] == 3 and summary["stopped"] == "idle" and summary["lag"] == 0
    assert (
        f"{EVENTS_TOPIC}[0] offsets {stored:,}-{start - 1:,} ({start - stored:,} messages) "
        "were deleted by the broker before the sink read them"
    ) in err
    assert f"{start - stored:,} messages in 1 gaps were deleted by the broker" in last_error(err)
    got = warehouse(db)
    assert got.gaps == [(GROUP, EVENTS_TOPIC, 0, stored, start - 1)]
    # Exactly what the broker still had landed, and landed + rejected + gaps = produced.
    assert got.ids == set(sent[:stored]) | set(sent[start:])
    assert got.events + got.rejects + (start - stored) == end
    assert got.lines == line_end
    assert got.offsets == {EVENTS_TOPIC: end, TRANSACTIONS_TOPIC: line_end}

    # The gap is recorded once: the next run finds nothing new and exits 0.
    third = sink_cli(db, broker.bootstrap, "--stop-when-idle", "1")
    summary, err, _ = finish(third)
    assert third.returncode == 0, err[-3000:]
    assert summary["gaps"] == 0 and summary["messages"] == 0
    assert warehouse(db).gaps == got.gaps


def test_a_partition_deleted_to_its_end_moves_the_stored_offset_past_the_gap(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    """No message follows the gap (log start = log end): the gap is recorded with the offset
    that moves past it, in a transaction of its own."""
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    send(broker, world, 500, seed=3, sent=sent)
    sink = Sink(SinkConfig(db=db, bootstrap=broker.bootstrap, stop_when_idle=1.0))
    assert sink.run().gaps == 0
    send(broker, world, 700, seed=4, sent=sent)
    broker.delete_records(EVENTS_TOPIC, 0, 1_200)
    assert log_range(broker.bootstrap, EVENTS_TOPIC) == (1_200, 1_200)
    sink = Sink(SinkConfig(db=db, bootstrap=broker.bootstrap, stop_when_idle=1.0))
    stats = sink.run()
    assert (stats.gaps, stats.missing, stats.lag, stats.exit_code) == (1, 700, 0, EXIT_GAPS)
    got = warehouse(db)
    assert got.gaps == [(GROUP, EVENTS_TOPIC, 0, 500, 1_199)]
    assert got.offsets[EVENTS_TOPIC] == 1_200
    assert got.ids == set(sent[:500])
    stats = Sink(SinkConfig(db=db, bootstrap=broker.bootstrap, stop_when_idle=1.0)).run()
    assert (stats.gaps, stats.exit_code) == (0, 0)


def test_records_after_a_jump_are_checked_against_the_log_start(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    """The consumer hands over records past the expected offset (what kafka-python does after
    resetting an out-of-range offset): the deleted part is a gap, a hole that was never
    deleted is not."""
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    send(broker, world, 1_000, seed=5, sent=sent)
    broker.delete_records(EVENTS_TOPIC, 0, 300)
    sink = Sink(SinkConfig(db=db, bootstrap=broker.bootstrap))
    assert sink._connect(threading.Event())
    sink._seek_pending()  # the sink starts at 0: the deleted 0..299 are found at once
    tp = TopicPartition(EVENTS_TOPIC, 0)
    assert sink.gaps_pending == [Gap(EVENTS_TOPIC, 0, 0, 299)] and sink.expected[tp] == 300
    sink.gaps_pending.clear()

    def records(*offsets: int) -> dict[TopicPartition, Fetched]:
        return {tp: Fetched(list(offsets), [b"{}"] * len(offsets))}

    assert sink._accept(records(300, 301)) == 2
    broker.delete_records(EVENTS_TOPIC, 0, 700)  # log start now 700
    assert sink._accept(records(750, 751)) == 2  # jump from 302 to 750
    assert sink.gaps_pending == [Gap(EVENTS_TOPIC, 0, 302, 699)]
    assert sink.expected[tp] == 752
    assert sink._accept(records(760)) == 1  # a hole after the log start: not deleted
    assert sink.gaps_pending == [Gap(EVENTS_TOPIC, 0, 302, 699)]
    sink.writer.close()
    sink.consumer.close()


def test_retention_overflow_while_another_process_holds_the_warehouse(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    """The issue's case: the sink runs, a dbt build holds the file, Kafka buffers more than
    it keeps. What the broker deleted is recorded, the rest lands, nothing else is missing."""
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    sink = Sink(SinkConfig(db=db, bootstrap=broker.bootstrap, batch_size=1_000, max_batch=2_000))
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    runner.start()
    send(broker, world, 2_000, seed=6, sent=sent)
    wait_until(lambda: landed(db) == 2_000)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(db), "120"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        send(broker, world, 40_000, seed=7, sent=sent)
    finally:
        holder.kill()  # the "dbt build" ends once everything is produced
        holder.wait()
    start, end = log_range(broker.bootstrap, EVENTS_TOPIC)
    assert start > 4_000 and end == len(sent) == 42_000
    sink.config.stop_when_idle = 1.0
    runner.join(120)
    assert not runner.is_alive()
    stats = sink.stats
    # Whether the broker deletes unread data here depends on a race: the consumer's client
    # fetches ahead into memory while the writer waits for the file, and on a quiet machine it
    # can hold all 40,000 events before the broker drops them. Either way nothing may be lost
    # silently: what did not land is exactly what the gaps record.
    assert stats.lock_waits >= 1
    assert stats.exit_code == (EXIT_GAPS if stats.gaps else 0)
    got = warehouse(db)
    missing = {o for _, _, _, first, last in got.gaps for o in range(first, last + 1)}
    assert len(missing) == stats.missing == sum(g[4] - g[3] + 1 for g in got.gaps)
    assert all(o < start for o in missing)  # only offsets the broker really deleted
    assert got.ids == {event_id for o, event_id in enumerate(sent) if o not in missing}
    assert got.events + got.rejects + len(missing) == end
    assert got.offsets[EVENTS_TOPIC] == end


# ------------------------------------------------------------------------------ hangs


def test_start_with_no_broker_fails_within_the_connect_timeout(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    proc = sink_cli(db, "127.0.0.1:1", "--stop-when-idle", "3")  # the default 10 s
    # Timed from its first line (it starts waiting then), not from the process start, which
    # takes seconds more on a busy machine.
    assert proc.stderr.readline().startswith("sink: connecting to Kafka at 127.0.0.1:1")
    summary, err, waited = finish(proc, timeout=60)
    assert proc.returncode == EXIT_KAFKA == 4
    assert 9 < waited < 16  # 10 s, plus the shutdown
    assert "no Kafka broker answered at 127.0.0.1:1 within 10 s" in last_error(err)
    assert summary["stopped"] == "kafka_unreachable" and summary["messages"] == 0
    assert not db.exists()  # a clean failure changes nothing
    # Nor does it touch an existing warehouse (no load run recorded, not a byte changed).
    with duckdb.connect(str(db)) as con:
        ensure_raw_schema(con)
    before = db.read_bytes()
    proc = sink_cli(db, "127.0.0.1:1", "--connect-timeout", "1")
    assert proc.stderr.readline().startswith("sink: connecting to Kafka at 127.0.0.1:1")
    summary, err, waited = finish(proc, timeout=60)
    assert proc.returncode == EXIT_KAFKA and waited < 6
    assert "within 1 s (--connect-timeout)" in last_error(err)
    assert db.read_bytes() == before


def _running_sink(db: Path, bootstrap: str, *extra: str) -> subprocess.Popen:
    return sink_cli(db, bootstrap, "--batch-interval", "0.1", *extra)


@pytest.mark.parametrize("state", ["start-up", "consuming", "warehouse locked", "broker gone"])
def test_sigterm_is_honoured_within_seconds(
    state: str, tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    holder = producer = None
    if state == "start-up":
        proc = sink_cli(db, "127.0.0.1:1")
        # Its first line says it is waiting for Kafka (signals are handled from then on).
        assert proc.stderr.readline().startswith("sink: connecting to Kafka at 127.0.0.1:1")
        time.sleep(1)
    else:
        send(broker, world, 1_000, seed=8, sent=sent)
        proc = _running_sink(db, broker.bootstrap)
        wait_until(lambda: landed(db) == 1_000)
        if state == "consuming":
            producer = threading.Thread(
                target=send, args=(broker, world, 20_000, 9, sent), daemon=True
            )
            producer.start()
            wait_until(lambda: landed(db) > 1_000)
        elif state == "warehouse locked":
            holder = subprocess.Popen(
                [sys.executable, "-c", HOLD_FILE, str(db), "120"],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert holder.stdout.readline().strip() == "held"
            send(broker, world, 2_000, seed=10, sent=sent)
            time.sleep(1.5)  # the sink has fetched them and waits for the file
        else:
            broker.set_down()
            time.sleep(2)
    try:
        proc.send_signal(signal.SIGTERM)
        summary, err, waited = finish(proc, timeout=60)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        if producer is not None:  # done before the broker goes (its sends would fail later)
            producer.join(120)
    assert waited < 8, (state, waited, err[-2000:])
    assert proc.returncode == 0, err[-3000:]
    assert summary["stopped"] == "stop"
    if state == "start-up":
        assert not db.exists()
    if state == "warehouse locked":
        assert "fetched messages stay in Kafka for the next run" in err
        assert landed(db) == 1_000  # nothing half-written
    if state == "consuming":
        # What this one process landed is all in the warehouse, and its offsets with it.
        assert landed(db) == summary["rows"]["raw.events"] > 1_000
        assert warehouse(db).ids == set(sent[: warehouse(db).offsets[EVENTS_TOPIC]])


# ------------------------------------------------------------------------------ broker loss


def test_a_broker_lost_for_the_broker_timeout_stops_the_sink(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    send(broker, world, 1_500, seed=11, sent=sent)
    proc = _running_sink(db, broker.bootstrap, "--broker-timeout", "4")
    wait_until(lambda: landed(db) == 1_500)
    broker.set_down()
    down_at = time.monotonic()
    summary, err, _ = finish(proc, timeout=60)
    took = time.monotonic() - down_at
    assert proc.returncode == EXIT_KAFKA, err[-3000:]
    assert took < 20  # 4 s of silence, noticed at the next check (every 3 s)
    assert "answered for" in last_error(err) and "(--broker-timeout 4)" in last_error(err)
    assert summary["stopped"] == "kafka_lost" and summary["lag"] is None
    assert summary["rows"]["raw.events"] == 1_500  # everything fetched was landed first
    assert warehouse(db).ids == set(sent)


def test_retry_forever_warns_while_the_broker_is_gone_and_resumes(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    send(broker, world, 1_000, seed=12, sent=sent)
    proc = _running_sink(db, broker.bootstrap, "--broker-timeout", "2", "--retry-forever")
    wait_until(lambda: landed(db) == 1_000)
    broker.set_down()
    time.sleep(14)
    broker.set_up()
    send(broker, world, 1_000, seed=13, sent=sent)
    wait_until(lambda: landed(db) == 2_000)
    proc.send_signal(signal.SIGTERM)
    summary, err, _ = finish(proc, timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert err.count("still retrying (--retry-forever)") >= 2
    assert "answers again after" in err
    assert summary["stopped"] == "stop" and summary["rows"]["raw.events"] == 2_000
    assert warehouse(db).ids == set(sent)


def test_stop_when_idle_counts_a_silent_broker_as_idle_but_fails(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sent: list[str] = []
    send(broker, world, 1_000, seed=14, sent=sent)
    proc = _running_sink(db, broker.bootstrap, "--stop-when-idle", "5")
    wait_until(lambda: landed(db) == 1_000 or proc.poll() is not None)
    broker.set_down()
    down_at = time.monotonic()
    summary, err, _ = finish(proc, timeout=60)
    assert proc.returncode == EXIT_KAFKA, err[-3000:]
    assert time.monotonic() - down_at < 20
    assert "messages may be unread" in last_error(err)
    assert summary["stopped"] == "idle_kafka_silent" and summary["rows"]["raw.events"] == 1_000


# ------------------------------------------------------------------------------ reporting


def test_gaps_reach_the_quality_mart_and_page(
    tmp_path: Path, small_warehouse: Path, dbt: Callable[..., subprocess.CompletedProcess]
) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "insert into raw.sink_gaps values "
            f"('{GROUP}', '{EVENTS_TOPIC}', 0, 1000, 4999, now()::timestamp), "
            f"('{GROUP}', '{EVENTS_TOPIC}', 3, 20, 29, now()::timestamp), "
            f"('{GROUP}', '{TRANSACTIONS_TOPIC}', 1, 7, 7, now()::timestamp)"
        )
    dbt(["seed"], db, tmp_path)
    # The mart, what it reads, and the tests of those models alone.
    dbt(
        [
            "build",
            "--select",
            "+mart_data_quality",
            "--indirect-selection",
            "cautious",
            "--exclude",
            "resource_type:unit_test",
        ],
        db,
        tmp_path,
    )
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select dataset, check_name, check_kind, row_count from marts.mart_data_quality "
            "where dataset like 'kafka:%' order by dataset, check_name"
        ).fetchall()
    assert rows == [
        (f"kafka:{EVENTS_TOPIC}", "messages_deleted_unread", "lost_before_read", 4_010),
        (f"kafka:{EVENTS_TOPIC}", "sink_gaps", "lost_before_read", 2),
        (f"kafka:{TRANSACTIONS_TOPIC}", "messages_deleted_unread", "lost_before_read", 1),
        (f"kafka:{TRANSACTIONS_TOPIC}", "sink_gaps", "lost_before_read", 1),
    ]
    with open_report_data(db) as data:
        section = quality.sink_gaps(data)
    assert isinstance(section, Table)
    assert section.rows == [[EVENTS_TOPIC, "2", "4,010"], [TRANSACTIONS_TOPIC, "1", "1"]]
