"""docker-compose.yml and the Dockerfile: validated offline by Debian's docker-compose (1.29)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from shoplens.config import (
    EVENTS_TOPIC,
    HIGH_INTENT_TOPIC,
    RECOMMENDATIONS_TOPIC,
    TRANSACTIONS_TOPIC,
)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"


def compose(*args: str, file: Path = COMPOSE) -> subprocess.CompletedProcess:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose missing: run `make sysdeps` (Debian package docker-compose)"
    return subprocess.run(
        [tool, "-f", str(file), *args], capture_output=True, text=True, cwd=file.parent, timeout=60
    )


@pytest.fixture(scope="module")
def config() -> dict:
    proc = compose("config")
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_file_is_valid() -> None:
    proc = compose("config", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


def test_a_broken_compose_file_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE.read_text()
    assert "    restart: unless-stopped\n" in text
    broken.write_text(text.replace("    restart: unless-stopped\n", "    restart_policy: always\n"))
    proc = compose("config", "-q", file=broken)
    assert proc.returncode != 0
    assert "restart_policy" in proc.stderr


def test_kafka_is_a_single_kraft_node(config: dict) -> None:
    kafka = config["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert str(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "1"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "healthcheck" in kafka
    topics = config["services"]["topics"]["command"][0]
    for topic in (EVENTS_TOPIC, TRANSACTIONS_TOPIC, HIGH_INTENT_TOPIC, RECOMMENDATIONS_TOPIC):
        assert topic in topics


def test_sink_and_producer_are_built_from_the_dockerfile(config: dict) -> None:
    for name in ("sink", "producer", "generate"):
        service = config["services"][name]
        assert Path(service["build"]["context"]) == ROOT
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert service["environment"]["SHOPLENS_DB"] == "/data/warehouse.duckdb"
    assert config["services"]["sink"]["command"] == ["shoplens", "sink"]
    assert config["services"]["producer"]["command"][:2] == ["shoplens", "stream"]
    assert (
        config["services"]["sink"]["depends_on"]["topics"]["condition"]
        == "service_completed_successfully"
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11" in dockerfile
    assert "pip install ." in dockerfile
    for path in ("pyproject.toml", "python", "models", "macros", "seeds", "profiles.yml"):
        assert (ROOT / path).exists(), path
        assert path in dockerfile
