"""The exactly-once sink against the embedded broker, over real sockets: kill -9 and restart,
broker outages and injected request errors, poison messages, and a dbt build holding the file.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from dbt_support import SQL_ONLY
from shoplens.config import EVENTS_TOPIC, TRANSACTIONS_TOPIC
from shoplens.generate import World, build_world, load_world
from shoplens.stream.broker import EmbeddedBroker
from shoplens.stream.clients import KAFKA_API_VERSION
from shoplens.stream.producer import ProduceStats, encode, produce, session_stream
from shoplens.stream.sink import Sink, SinkConfig, SinkStats
from shoplens.warehouse import ensure_raw_schema

pytestmark = pytest.mark.kafka

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    # The default 16 partitions keep each mock partition below its 5 MiB retention in these
    # tests (the dbt test streams up to 120,000 events; 8 partitions overflowed under load).
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(11, 400, 150)


class Background:
    """Run a function in a thread; `result()` joins and re-raises its exception."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.value = fn(*args, **kwargs)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 180) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background task did not finish"
        if self.error is not None:
            raise self.error
        return self.value


def produce_in_background(
    broker: EmbeddedBroker,
    world: World,
    rate: float,
    duration: float,
    seed: int,
    sent: list[str],
    stop: threading.Event | None = None,
) -> Background:
    return Background(
        produce,
        broker.bootstrap,
        world,
        rate=rate,
        duration=duration,
        seed=seed,
        id_prefix=f"t{seed}-",
        stop=stop,
        on_sent=lambda event: sent.append(event["event_id"]),
    )


def landed(db: Path) -> dict[str, object]:
    with duckdb.connect(str(db), read_only=True) as con:
        ids = [
            r[0]
            for r in con.execute(
                "select event_id from raw.events where source = 'kafka'"
            ).fetchall()
        ]
        lines = [
            r[0]
            for r in con.execute(
                "select transaction_id from raw.transactions where source = 'kafka'"
            ).fetchall()
        ]
        offsets = dict(
            con.execute(
                "select topic, sum(next_offset) from raw.sink_offsets group by topic"
            ).fetchall()
        )
        rejects = con.execute("select count(*) from raw.rejects").fetchone()[0]
        gaps = con.execute("select count(*) from raw.sink_gaps").fetchone()[0]
    return {"ids": ids, "lines": lines, "offsets": offsets, "rejects": rejects, "gaps": gaps}


def read_topic(bootstrap: str, topic: str, field: str) -> Counter:
    """How often each `field` value occurs in the whole topic (read back from the broker)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, api_version=KAFKA_API_VERSION, enable_auto_commit=False
    )
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        seen: Counter = Counter()
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for msgs in consumer.poll(timeout_ms=500).values():
                seen.update(json.loads(m.value)[field] for m in msgs)
        assert sum(seen.values()) == sum(ends.values())
        return seen
    finally:
        consumer.close()


def assert_exactly_once(
    db: Path,
    bootstrap: str,
    sent: list[str],
    produced: ProduceStats,
    producer_duplicates: bool = False,
) -> None:
    """Every message in the topics is in the warehouse exactly once, and nothing sent is
    missing. The producer is idempotent, but after a broker outage kafka-python can still
    resend a batch (at-least-once); `producer_duplicates` allows that, in Kafka only."""
    got = landed(db)
    in_kafka = read_topic(bootstrap, EVENTS_TOPIC, "event_id")
    lines_in_kafka = read_topic(bootstrap, TRANSACTIONS_TOPIC, "transaction_id")
    assert Counter(got["ids"]) == in_kafka  # the sink: each message once
    assert Counter(got["lines"]) == lines_in_kafka
    assert set(in_kafka) == set(sent) and len(sent) == produced.events  # nothing lost
    assert len(lines_in_kafka) == produced.transactions
    if not producer_duplicates:
        assert len(got["ids"]) == len(sent)
        assert len(got["lines"]) == produced.transactions
    assert got["offsets"] == {
        EVENTS_TOPIC: sum(in_kafka.values()),
        TRANSACTIONS_TOPIC: sum(lines_in_kafka.values()),
    }
    assert got["rejects"] == 0 and got["gaps"] == 0


def sink_process(db: Path, bootstrap: str, *extra: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            SHOPLENS,
            "sink",
            "--db",
            str(db),
            "--bootstrap",
            bootstrap,
            "--batch-size",
            "2000",
            "--batch-interval",
            "0.2",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("a"),
        text=True,
    )


def test_sink_killed_at_random_moments_lands_every_event_exactly_once(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db, log = tmp_path / "w.duckdb", tmp_path / "sink.log"
    with duckdb.connect(str(db)) as con:  # an existing warehouse, as after `shoplens generate`
        ensure_raw_schema(con)
    sent: list[str] = []
    producer = produce_in_background(broker, world, rate=2_000, duration=26, seed=1, sent=sent)
    rng = random.Random(20261121)
    landed_before_kill = []
    # Kill each life between 1 and 3.5 s after it says it is connecting (its imports take
    # ~1 s on an idle machine and several on a loaded one), so that the five lives end while
    # the producer (26 s) still sends.
    for life in range(5):
        proc = sink_process(db, broker.bootstrap, log=log)
        deadline = time.monotonic() + 120
        while log.read_text().count("sink: connecting") <= life:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(rng.uniform(1.0, 3.5))
        proc.kill()  # SIGKILL: no flush, no goodbye
        proc.wait()
        landed_before_kill.append(len(landed(db)["ids"]))
    produced = producer.result()
    assert produced.events == 52_000
    final = sink_process(db, broker.bootstrap, "--stop-when-idle", "3", "--json", log=log)
    out, _ = final.communicate(timeout=180)
    assert final.returncode == 0, log.read_text()[-3000:]
    summary = json.loads(out)
    assert summary["lag"] == 0
    assert_exactly_once(db, broker.bootstrap, sent, produced)
    # The kills really interrupted work in progress: data landed between them (a sink killed
    # during its start-up lands nothing, which is a valid random moment too), and whatever the
    # last life left behind was landed by the final run (on a loaded machine the five lives can
    # outlast the producer and the last one may land everything).
    progress = sorted({n for n in landed_before_kill if 0 < n < produced.events})
    assert len(progress) >= 2
    assert landed_before_kill == sorted(landed_before_kill)
    assert summary["messages"] > 0 or landed_before_kill[-1] == produced.events
    with duckdb.connect(str(db), read_only=True) as con:
        started = con.execute("select count(*) from raw.load_runs where kind = 'kafka'").fetchone()[
            0
        ]
    assert started >= len(progress) + 1  # each sink that wrote recorded its run, and the last


def run_sink_thread(
    db: Path, bootstrap: str, **config: object
) -> tuple[Sink, threading.Event, Background]:
    sink = Sink(SinkConfig(db=db, bootstrap=bootstrap, batch_interval=0.2, **config))
    stop = threading.Event()
    return sink, stop, Background(sink.run, stop)


def finish(sink: Sink, runner: Background) -> SinkStats:
    sink.config.stop_when_idle = 2.0
    return runner.result()


def test_broker_outage_and_request_errors_lose_nothing(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sink, _, runner = run_sink_thread(db, broker.bootstrap)
    sent: list[str] = []
    producer = produce_in_background(broker, world, rate=3_000, duration=6, seed=2, sent=sent)
    time.sleep(1.0)
    broker.push_request_errors(
        "produce",
        ["not_leader_for_partition", "request_timed_out", "transport", "not_enough_replicas"],
    )
    broker.push_request_errors("fetch", ["not_leader_for_partition", "transport"])
    broker.push_request_errors("heartbeat", ["not_coordinator"])
    time.sleep(1.5)
    broker.set_down()
    time.sleep(2.0)
    broker.set_up()
    produced = producer.result()
    stats = finish(sink, runner)
    assert produced.events == 18_000
    assert stats.lag == 0
    assert_exactly_once(db, broker.bootstrap, sent, produced, producer_duplicates=True)


def poison_messages() -> list[tuple[bytes | None, str]]:
    event = {
        "event_id": "p-1",
        "event_time": "2026-11-21 09:00:00",
        "event_type": "page_view",
        "user_id": 1,
        "user_session": "p-s1",
        "device": "mobile",
        "page": "home",
    }

    def with_(**changes: object) -> bytes:
        return json.dumps({**event, **changes}).encode()

    return [
        (b"{not json", "not valid JSON"),
        (b"\x00\x01\x02binary", "not valid JSON"),
        (with_(user_id="one"), "field user_id: expected an integer, got string"),
        (with_(price=[1, 2]), "field price: expected a number, got array"),
        (
            json.dumps({k: v for k, v in event.items() if k != "event_time"}).encode(),
            "missing field event_time",
        ),
        (with_(event_type="teleport"), "unknown event_type 'teleport'"),
        (with_(brand="<script>document.cookie</script>"), "field brand: markup in text"),
        (with_(page="</div><iframe src=//evil>"), "field page: markup in text"),
        (with_(brand="y" * 40_000), "payload too large: "),
        (json.dumps(event).encode("utf-16"), "not valid UTF-8"),
        (
            json.dumps({**event, "brand": "Müller"}, ensure_ascii=False).encode("cp1252"),
            "not valid UTF-8",
        ),
        (with_(price=float("nan")), "field price: non-finite number NaN"),
        (with_(price=1).replace(b'"price": 1', b'"price": 1, "price": 2'), "ambiguous object"),
        (b"null", "not a JSON object (got null)"),
        (with_(event_time="10000-01-01 00:00:00"), "field event_time: 10000-01-01 00:00:00 out"),
    ]


def test_poison_messages_are_rejected_with_reasons_and_the_rest_lands(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sink, _, runner = run_sink_thread(db, broker.bootstrap, batch_size=1_000)
    pairs = list(
        session_stream(
            world,
            10_000,
            dt.datetime(2026, 11, 21, 9),
            dt.timedelta(minutes=10),
            seed=3,
            id_prefix="p3-",
        )
    )
    kinds = poison_messages()
    rng = random.Random(3)
    poison_at = set(rng.sample(range(len(pairs)), 110))  # about 1%
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap, api_version=KAFKA_API_VERSION, max_request_size=2**20
    )
    futures = []
    good_lines = 0
    for i, (event, lines) in enumerate(pairs):
        producer.send(EVENTS_TOPIC, key=event["user_session"].encode(), value=encode(event))
        for line in lines:
            producer.send(TRANSACTIONS_TOPIC, key=b"c", value=encode(line))
            good_lines += 1
        if i in poison_at:
            payload, reason = kinds[len(futures) % len(kinds)]
            topic = TRANSACTIONS_TOPIC if len(futures) % 10 == 0 else EVENTS_TOPIC
            futures.append((producer.send(topic, value=payload), payload, reason, topic))
    producer.flush()
    producer.close()
    stats = finish(sink, runner)
    assert stats.lag == 0 and stats.rejects == len(futures) == 110
    with duckdb.connect(str(db), read_only=True) as con:
        rejects = {
            (r[0], r[1], r[2]): (r[3], r[4])
            for r in con.execute(
                "select topic, partition, kafka_offset, payload, reason from raw.rejects "
                "where source = 'kafka'"
            ).fetchall()
        }
        ids = sorted(r[0] for r in con.execute("select event_id from raw.events").fetchall())
        n_lines = con.execute("select count(*) from raw.transactions").fetchone()[0]
    assert len(rejects) == 110
    for future, payload, reason, topic in futures:
        meta = future.get(timeout=10)
        stored_payload, stored_reason = rejects[(topic, meta.partition, meta.offset)]
        assert stored_payload == payload
        if topic == EVENTS_TOPIC or reason.startswith(("not ", "payload too large", "ambiguous")):
            assert stored_reason.startswith(reason), (reason, stored_reason)
        else:  # an event-shaped object on the transactions topic misses the order-line fields
            assert "missing field transaction_id" in stored_reason
    assert ids == sorted(e["event_id"] for e, _ in pairs)
    assert n_lines == good_lines


def test_dbt_build_while_the_sink_runs(
    tmp_path: Path,
    small_warehouse: Path,
    dbt: Callable[..., subprocess.CompletedProcess],
    broker: EmbeddedBroker,
) -> None:
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(small_warehouse, db)
    with duckdb.connect(str(db), read_only=True) as con:
        world = load_world(con)
        before = con.execute("select count(*) from raw.events").fetchone()[0]
    sink, _, runner = run_sink_thread(db, broker.bootstrap)
    sent: list[str] = []
    # Stream until dbt is done (at most 300 s: seed and build took 190 s on a loaded machine),
    # so the two overlap all the way; at most 120,000 events, as the retention allows.
    dbt_done = threading.Event()
    producer = produce_in_background(
        broker, world, rate=400, duration=300, seed=4, sent=sent, stop=dbt_done
    )
    time.sleep(1.0)
    # The seeds, and every model and data test that reads raw.* (the ml models read the marts
    # and take most of the build time; the unit tests have fixed inputs and run in
    # built_warehouse's build).
    dbt(["build", *SQL_ONLY], db, tmp_path)
    assert producer.thread.is_alive(), "dbt should finish while events are still streaming"
    dbt_done.set()
    produced = producer.result()
    stats = finish(sink, runner)
    assert stats.lag == 0
    assert_exactly_once(db, broker.bootstrap, sent, produced)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from raw.events").fetchone()[0] == before + len(sent)
        # dbt saw a consistent snapshot: its sessionised events are a subset of raw.events.
        modelled = con.execute(
            "select count(*) from intermediate.int_events_sessionized"
        ).fetchone()[0]
    assert 0 < modelled <= before + len(sent)


HOLD_FILE = """
import sys, time
from shoplens.warehouse import open_connection
con = open_connection(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_the_end_of_a_backlog_is_written_at_once(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    """A backlog is written in full batches, and what is left after the last full one goes as
    soon as the consumer has fetched it all, not after `batch_interval` (60 s here)."""
    produced = produce(broker.bootstrap, world, rate=20_000, duration=0.15, seed=8)
    total = produced.events + produced.transactions
    assert total > 3_000 and total % 1_000
    db = tmp_path / "w.duckdb"
    sink = Sink(
        SinkConfig(
            db=db, bootstrap=broker.bootstrap, batch_size=1_000, max_batch=1_000, batch_interval=60
        )
    )
    stop = threading.Event()
    runner = Background(sink.run, stop)
    deadline = time.monotonic() + 20
    while sink.stats.messages < total and time.monotonic() < deadline:
        time.sleep(0.05)
    written_before_stop = sink.stats.messages
    stop.set()
    stats = runner.result()
    assert written_before_stop == stats.messages == total
    assert stats.batches == total // 1_000 + 1
    assert stats.last_commit is not None and stats.first_record is not None
    assert stats.last_commit - stats.first_record < 10


def test_sink_waits_while_another_process_holds_the_warehouse(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    db = tmp_path / "w.duckdb"
    sink, _, runner = run_sink_thread(db, broker.bootstrap)
    sent: list[str] = []
    producer = produce_in_background(broker, world, rate=2_000, duration=6, seed=5, sent=sent)
    time.sleep(1.5)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, str(db), "3"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    assert holder.wait(timeout=30) == 0
    produced = producer.result()
    stats = finish(sink, runner)
    assert stats.lock_waits >= 1
    assert_exactly_once(db, broker.bootstrap, sent, produced)


def test_a_recreated_topic_is_read_from_its_start(
    tmp_path: Path, broker: EmbeddedBroker, world: World
) -> None:
    """Offsets stored for an older incarnation of a topic must not hide the new messages."""
    db = tmp_path / "w.duckdb"
    first = produce(broker.bootstrap, world, rate=20_000, duration=0.2, seed=6, id_prefix="r1-")
    sink, _, runner = run_sink_thread(db, broker.bootstrap)
    assert finish(sink, runner).rows["raw.events"] == first.events == 4_000
    broker.delete_topic(EVENTS_TOPIC)
    broker.create_topic(EVENTS_TOPIC, broker.partitions)
    second = produce(broker.bootstrap, world, rate=5_000, duration=0.1, seed=7, id_prefix="r2-")
    sink, _, runner = run_sink_thread(db, broker.bootstrap)
    stats = finish(sink, runner)
    assert stats.rows["raw.events"] == second.events == 500
    with duckdb.connect(str(db), read_only=True) as con:
        ids = con.execute(
            "select count(*), count(distinct event_id), "
            "count(*) filter (where event_id like 'r2-%') from raw.events"
        ).fetchone()
    assert ids == (4_500, 4_500, 500)
