"""The exactly-once Kafka → DuckDB sink.

A consumer (`clients.SinkConsumer`: confluent-kafka) reads every partition of `ecommerce_events` and
`ecommerce_transactions` and micro-batches the raw payloads (by count and by time; while the
writer is busy the next batch keeps growing, so batches adapt to the load; what is left at the
end of a backlog goes as soon as it is all fetched). Each batch is
validated in bulk (`contract.Validator`, in a thread of its own, while the batch before it is
written), then ONE DuckDB transaction writes the valid rows,
the rejects and the next offset of every partition in the batch to `raw.sink_offsets`. The
warehouse, not Kafka, is the source of truth for offsets: on start (and when a topic gains
partitions) the sink pauses the new partitions, reads their offsets from DuckDB and seeks there
before it accepts any record. A sink killed at any instant therefore re-reads exactly what it
had not committed.

The partitions are assigned by the sink, not by a Kafka consumer group: a DuckDB file has one
writer, so one sink per warehouse reads them all, and kafka-python 3.0's group join sometimes
stalled a sink's start for seconds to minutes (a range assignment made before the topic
metadata arrived, an event-loop task blocked after the offset fetch).

Before writing, the transaction checks that the stored offsets are still the ones this sink
last saw; if another sink under the same name wrote those partitions meanwhile (two started by
mistake) the batch is rolled back and the partitions are re-read from the stored offsets. The
writer releases the file after each batch while the stream is quiet; while it works off a
backlog it keeps its connection across back-to-back batches (reopening the file for every batch
costs a checkpoint each time) but releases it at least every `HOLD_SECONDS`, so a `dbt build`
can take the file between batches. While another process holds the file the sink pauses its
partitions, keeps polling and retries, and Kafka buffers.

Nothing is lost silently: offsets the broker deleted before the sink read them (retention) are
recorded in `raw.sink_gaps` in the transaction that moves past them (`gaps.py`). Every wait on
Kafka is bounded (`watchdog.py`): start-up fails after `connect_timeout`, a broker silent for
`broker_timeout` stops the sink (unless `retry_forever`), and a stop request is honoured within
a few seconds in every state.

The package, by seam:

- `config.py`: `SinkConfig`, exit codes and shared constants;
- `core.py`: `Sink`, the consumer loop (partitions, expected offsets, buffers, gaps, hand-off);
- `buffer.py`: per-topic buffers and the `Batch` handed to the writer;
- `writer.py`: the writer (a validation thread and a write thread: batch N+1 is validated while
  N is written, both in order; holds or releases the file, retries while the file is busy);
- `store.py`: `SinkStore`, the DuckDB side (open, validate, one transaction per batch);
- `hooks.py`: `BatchHook`, what else a batch writes in its transaction (the live scorer);
- `stats.py`: `SinkStats` and the `--json` summary; `errors.py`: the write exceptions.

The consumer loop and the writer meet only through `Writer.submit`, `Writer.busy` and
`Writer.results` (a `Batch` in, a `WriteResult` out); the writer reaches the warehouse only
through its `SinkStore`.
"""

from shoplens.stream.sink.config import (
    DEFAULT_GROUP,
    EXIT_GAPS,
    EXIT_KAFKA,
    SOURCE,
    STALL_SECONDS,
    SinkConfig,
)
from shoplens.stream.sink.core import GIL_SWITCH_INTERVAL, Sink, stop_on_signals
from shoplens.stream.sink.errors import WarehouseBusy, WriteAbandoned
from shoplens.stream.sink.hooks import BatchHook
from shoplens.stream.sink.stats import SinkStats, stats_json
from shoplens.stream.sink.store import SinkStore
from shoplens.stream.sink.writer import HOLD_SECONDS, LINGER_SECONDS

__all__ = [
    "DEFAULT_GROUP",
    "EXIT_GAPS",
    "EXIT_KAFKA",
    "GIL_SWITCH_INTERVAL",
    "HOLD_SECONDS",
    "LINGER_SECONDS",
    "SOURCE",
    "STALL_SECONDS",
    "BatchHook",
    "Sink",
    "SinkConfig",
    "SinkStats",
    "SinkStore",
    "WarehouseBusy",
    "WriteAbandoned",
    "stats_json",
    "stop_on_signals",
]
