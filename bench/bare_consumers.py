"""The bare consumer loops bench_stream compares the sink with, each run in a process of its own.

Run by bench.bench_stream: `python -m bench.bare_consumers {kafka-python|confluent} BOOTSTRAP N
GROUP` reads N messages of the events topic and prints `[messages/s, CPU us per message]` as
JSON. The module imports only the Kafka clients and `json`, as a user's own loop would: a
process that also imported DuckDB, pyarrow and the sink has a larger heap, and every garbage
collection pass over it would be charged to the loop.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Consumer as ConfluentConsumer
from kafka import KafkaConsumer

from shoplens.config import EVENTS_TOPIC
from shoplens.stream.clients import (
    CONFLUENT_FETCH_SETTINGS,
    CONSUMER_FETCH_SETTINGS,
    KAFKA_API_VERSION,
    POLL_RECORDS,
)


def bare_kafka_python(bootstrap: str, n: int, group: str) -> tuple[float, float]:
    """kafka-python poll loop that only deserialises: (messages/s, CPU us per message), both
    from the first message polled to the last deserialised."""
    consumer = KafkaConsumer(
        EVENTS_TOPIC,
        bootstrap_servers=bootstrap,
        api_version=KAFKA_API_VERSION,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **CONSUMER_FETCH_SETTINGS,
    )
    seen, first, cpu = 0, 0.0, 0.0
    try:
        while seen < n:
            # poll returns as soon as records are there: no wait after the n-th message.
            polled = consumer.poll(timeout_ms=500, max_records=min(POLL_RECORDS, n - seen))
            for msgs in polled.values():
                if not seen:
                    first, cpu = time.perf_counter(), time.process_time()
                for m in msgs:
                    json.loads(m.value)
                seen += len(msgs)
        return _window(seen, first, cpu)
    finally:
        consumer.close()


def confluent(bootstrap: str, n: int, group: str) -> tuple[float, float]:
    """confluent-kafka consume loop that deserialises: (messages/s, CPU us per message), both
    from the first message consumed to the last deserialised."""
    consumer = ConfluentConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **CONFLUENT_FETCH_SETTINGS,
        }
    )
    consumer.subscribe([EVENTS_TOPIC])
    seen, first, cpu = 0, 0.0, 0.0
    try:
        while seen < n:
            # consume() waits until it has num_messages or the timeout passed: never ask for
            # more than remain, or the last call would wait out the timeout inside the clock.
            msgs = consumer.consume(num_messages=min(POLL_RECORDS, n - seen), timeout=0.5)
            for m in msgs:
                if m.error() is None:
                    if not seen:
                        first, cpu = time.perf_counter(), time.process_time()
                    json.loads(m.value())  # type: ignore[arg-type]
                    seen += 1
        return _window(seen, first, cpu)
    finally:
        consumer.close()


def _window(seen: int, first: float, cpu: float) -> tuple[float, float]:
    """(messages/s, CPU us per message of the process) since `first` (perf_counter) and
    `cpu` (process_time)."""
    return (
        seen / (time.perf_counter() - first),
        (time.process_time() - cpu) * 1e6 / seen,
    )


LOOPS = {"kafka-python": bare_kafka_python, "confluent": confluent}


def main(argv: list[str]) -> None:
    """Run one loop and print its (messages/s, CPU us per message) as JSON."""
    reader, bootstrap, n, group = argv
    print(json.dumps(LOOPS[reader](bootstrap, int(n), group)))


if __name__ == "__main__":
    main(sys.argv[1:])
