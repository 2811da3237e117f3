"""The exactly-once Kafka → DuckDB sink (moved from `stream/sink.py` to `sink/core.py`)."""

from shoplens.stream.sink.core import (
    DEFAULT_GROUP,
    EXIT_GAPS,
    EXIT_KAFKA,
    BatchHook,
    Sink,
    SinkConfig,
    SinkStats,
    WarehouseBusy,
    WriteAbandoned,
    stats_json,
    stop_on_signals,
)

__all__ = [
    "DEFAULT_GROUP",
    "EXIT_GAPS",
    "EXIT_KAFKA",
    "BatchHook",
    "Sink",
    "SinkConfig",
    "SinkStats",
    "WarehouseBusy",
    "WriteAbandoned",
    "stats_json",
    "stop_on_signals",
]
