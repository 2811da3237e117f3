"""How the sink runs (`SinkConfig`) and the constants the CLI and the other parts share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shoplens.config import EVENTS_TOPIC, TRANSACTIONS_TOPIC

DEFAULT_GROUP = "shoplens-sink"
# The `source` column of every row the sink writes.
SOURCE = "kafka"
# Nothing fetched for this long while behind the log end: check and restart the fetch.
STALL_SECONDS = 3.0
# Exit codes of `shoplens sink` beyond 0 (success) and 1 (error): messages were deleted by the
# broker before the sink read them (recorded in raw.sink_gaps); Kafka could not be reached, was
# lost for `broker_timeout`, or was silent when the sink stopped idle (messages may be unread).
EXIT_GAPS = 3
EXIT_KAFKA = 4


@dataclass
class SinkConfig:
    """How the sink runs. Times are in seconds unless the name says ms."""

    db: Path
    bootstrap: str
    group: str = DEFAULT_GROUP
    topics: tuple[str, ...] = (EVENTS_TOPIC, TRANSACTIONS_TOPIC)
    batch_size: int = 5_000  # hand a batch to the writer at this many messages...
    max_batch: int = 25_000  # ...but while it is busy keep buffering up to this many
    batch_interval: float = 0.25
    stop_when_idle: float | None = None
    progress_every: float = 5.0
    # At a stop request, give up waiting for a busy warehouse after this long (the batch stays
    # in Kafka for the next run).
    shutdown_timeout: float = 3.0
    connect_timeout: float = 10.0  # start-up: fail if no broker answers within this long
    broker_timeout: float = 30.0  # running: stop after this long without an answer...
    retry_forever: bool = False  # ...unless this is set (then warn once per broker_timeout)
