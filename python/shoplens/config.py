"""Where things live: the project root, the warehouse file, the Kafka bootstrap servers."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DB_ENV = "SHOPLENS_DB"
KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"

EVENTS_TOPIC = "ecommerce_events"
TRANSACTIONS_TOPIC = "ecommerce_transactions"
HIGH_INTENT_TOPIC = "ecommerce_high_intent"
RECOMMENDATIONS_TOPIC = "ecommerce_recommendations"


def default_db_path() -> Path:
    """`SHOPLENS_DB` if set, else `warehouse.duckdb` in the project root."""
    env = os.environ.get(DB_ENV)
    return Path(env) if env else PROJECT_ROOT / "warehouse.duckdb"


def kafka_bootstrap() -> str | None:
    """The external Kafka cluster to talk to, or None to use the embedded broker."""
    return os.environ.get(KAFKA_ENV) or None
