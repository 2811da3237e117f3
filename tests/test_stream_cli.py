"""The broker / stream / sink commands, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from kafka import KafkaConsumer

from shoplens.config import EVENTS_TOPIC, HIGH_INTENT_TOPIC, TRANSACTIONS_TOPIC
from shoplens.stream.broker import EmbeddedBroker
from shoplens.stream.clients import KAFKA_API_VERSION
from shoplens.warehouse import connect

pytestmark = pytest.mark.kafka

SHOPLENS = str(Path(sys.executable).with_name("shoplens"))


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    return subprocess.run(
        [SHOPLENS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
    )


def one_line_error(proc: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert proc.returncode == code
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("shoplens: error:")
    assert text in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def warehouse(small_warehouse: Path, tmp_path: Path) -> Path:
    db = tmp_path / "w.duckdb"
    shutil.copy(small_warehouse, db)
    return db


def kafka_rows(db: Path) -> tuple[int, int, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "select (select count(*) from raw.events where source = 'kafka'), "
            "(select count(distinct event_id) from raw.events where source = 'kafka'), "
            "(select count(*) from raw.rejects)"
        ).fetchone()


def test_stream_embedded_with_sink_lands_the_burst(warehouse: Path) -> None:
    proc = run(
        "stream",
        "--db",
        str(warehouse),
        "--embedded",
        "--sink",
        "--rate",
        "1000",
        "--duration",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "embedded broker at 127.0.0.1:" in proc.stderr
    assert "stream: 2,000 events" in proc.stderr
    assert kafka_rows(warehouse) == (2_000, 2_000, 0)
    # A second one-shot run starts a new, empty embedded broker: the offsets the first one
    # stored must not apply to it (no "recreated topic" detour), and its burst lands whole.
    again = run(
        "stream",
        "--db",
        str(warehouse),
        "--embedded",
        "--sink",
        "--rate",
        "1000",
        "--duration",
        "2",
    )
    assert again.returncode == 0, again.stderr
    assert "recreated" not in again.stderr
    assert kafka_rows(warehouse) == (4_000, 4_000, 0)


def test_broker_stream_and_sink_as_separate_commands(warehouse: Path) -> None:
    broker = subprocess.Popen(
        [SHOPLENS, "broker", "--partitions", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
    )
    try:
        bootstrap = broker.stdout.readline().strip()
        assert bootstrap.startswith("127.0.0.1:")
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=KAFKA_API_VERSION)
        for topic in (EVENTS_TOPIC, TRANSACTIONS_TOPIC, HIGH_INTENT_TOPIC):
            assert consumer.partitions_for_topic(topic) == {0, 1, 2}
        consumer.close()
        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        produced = run(
            "stream", "--db", str(warehouse), "--rate", "1500", "--duration", "1", env=env
        )
        assert produced.returncode == 0, produced.stderr
        sunk = run("sink", "--db", str(warehouse), "--stop-when-idle", "2", "--json", env=env)
        assert sunk.returncode == 0, sunk.stderr
        summary = json.loads(sunk.stdout)
        assert summary["rows"]["raw.events"] == 1_500
        assert summary["lag"] == 0 and summary["rejects"] == 0
        assert kafka_rows(warehouse) == (1_500, 1_500, 0)
        # A second sink in the same group finds nothing new: the offsets are in the warehouse.
        again = run("sink", "--db", str(warehouse), "--stop-when-idle", "1", "--json", env=env)
        assert json.loads(again.stdout)["messages"] == 0
        assert kafka_rows(warehouse) == (1_500, 1_500, 0)
    finally:
        broker.send_signal(signal.SIGTERM)
        _, err = broker.communicate(timeout=20)
    assert broker.returncode == 0, err
    assert f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}" in err


def test_sink_exits_cleanly_on_sigterm(warehouse: Path) -> None:
    with EmbeddedBroker() as broker:
        sink = subprocess.Popen(
            [SHOPLENS, "sink", "--db", str(warehouse), "--bootstrap", broker.bootstrap, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            produced = run(
                "stream",
                "--db",
                str(warehouse),
                "--bootstrap",
                broker.bootstrap,
                "--rate",
                "2000",
                "--duration",
                "1",
            )
            assert produced.returncode == 0, produced.stderr
            for _ in range(120):  # wait until the sink has landed the burst
                with connect(warehouse, read_only=True) as con:
                    landed = con.execute(
                        "select count(*) from raw.events where source = 'kafka'"
                    ).fetchone()[0]
                if landed == 2_000 or sink.poll() is not None:
                    break
                time.sleep(0.5)
            sink.send_signal(signal.SIGTERM)
            out, err = sink.communicate(timeout=60)
        finally:
            if sink.poll() is None:
                sink.kill()
    assert sink.returncode == 0, err
    assert json.loads(out)["rows"].get("raw.events") == 2_000, err[-3000:]


def test_command_errors_are_one_line() -> None:
    one_line_error(run("sink"), 2, "no Kafka cluster: set KAFKA_BOOTSTRAP_SERVERS")
    one_line_error(run("stream", "--embedded"), 2, "--embedded needs --sink")
    one_line_error(
        run("stream", "--bootstrap", "127.0.0.1:1", "--embedded", "--sink"),
        2,
        "--embedded conflicts with --bootstrap",
    )
    one_line_error(
        run("stream", "--bootstrap", "127.0.0.1:1", "--score"), 2, "--score needs --sink"
    )
    one_line_error(
        run("broker", env={"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}),
        2,
        "KAFKA_BOOTSTRAP_SERVERS is set",
    )
    one_line_error(
        run("stream", "--db", "/nonexistent/w.duckdb", "--embedded", "--sink"),
        1,
        "warehouse file not found",
    )


def test_scoring_needs_a_trained_model(warehouse: Path) -> None:
    proc = run(
        "stream",
        "--db",
        str(warehouse),
        "--embedded",
        "--sink",
        "--score",
        "--rate",
        "100",
        "--duration",
        "1",
    )
    one_line_error(proc, 1, "run `dbt build` first")
    assert kafka_rows(warehouse)[0] == 0  # refused before anything was streamed
