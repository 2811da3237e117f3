"""Bounded waits on Kafka: the sink's start-up and its watch on a broker that stops answering.

A client call without a deadline (kafka-python's metadata fetch behind `partitions_for_topic`,
for one) would keep a waiting main thread waiting after the SIGTERM handler ran. The sink
therefore talks to Kafka only through calls that take a timeout (`beginning_offsets`,
`end_offsets`, `poll`, `partitions_for_topic` of `clients.SinkConsumer`) in slices of at most
`SLICE_SECONDS`, checking its stop event between them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kafka import TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from shoplens.stream.clients import SinkConsumer

# Longest single wait on Kafka: a stop request is noticed within about this long.
SLICE_SECONDS = 1.0


class KafkaUnavailable(Exception):
    """No broker answered within the configured time."""


def cached_partitions(consumer: SinkConsumer, topic: str) -> set[int]:
    """Partitions of `topic`: asked of the brokers for at most `SLICE_SECONDS`, else the last
    known ones (empty if never known)."""
    return consumer.partitions_for_topic(topic, timeout_ms=int(SLICE_SECONDS * 1000))


def wait_for_topics(
    consumer: SinkConsumer,
    topics: tuple[str, ...],
    *,
    bootstrap: str,
    timeout: float,
    stop: threading.Event,
) -> dict[str, set[int]] | None:
    """Wait until the cluster answers for every topic; their partitions (None if stopped).

    Raises KafkaUnavailable after `timeout` seconds without an answer.
    """
    probe = [TopicPartition(topic, 0) for topic in topics]
    deadline = time.monotonic() + timeout
    last: KafkaError | None = None
    while not stop.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if last is None or isinstance(last, KafkaTimeoutError):
                raise KafkaUnavailable(
                    f"no Kafka broker answered at {bootstrap} within {timeout:g} s "
                    "(--connect-timeout); nothing was written"
                )
            raise KafkaUnavailable(
                f"Kafka at {bootstrap} did not serve topics {', '.join(topics)} within "
                f"{timeout:g} s (--connect-timeout): {last}; nothing was written"
            )
        try:
            answered = consumer.end_offsets(
                probe, timeout_ms=max(1, int(min(SLICE_SECONDS, remaining) * 1000))
            )
        except KafkaError as exc:
            last = exc
            if not isinstance(exc, KafkaTimeoutError):
                stop.wait(min(0.2, max(remaining, 0)))
            continue
        if len(answered) < len(probe):  # a client may leave out what it got no answer for
            stop.wait(min(0.2, max(remaining, 0)))
            continue
        partitions = {topic: cached_partitions(consumer, topic) for topic in topics}
        if all(partitions.values()):
            return partitions
    return None


class BrokerWatch:
    """How long Kafka has been silent, and what to do about it.

    Any answer counts (records, offsets); `check()` says when the sink should give up: after
    `timeout` seconds of silence, unless `retry_forever`, in which case it prints a warning once
    per `timeout` and keeps going.
    """

    def __init__(
        self,
        bootstrap: str,
        timeout: float,
        retry_forever: bool,
        report: Callable[[str], None],
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.retry_forever = retry_forever
        self.report = report
        self.last_contact = time.monotonic()
        self._warned_at: float | None = None

    def contact(self) -> None:
        """Kafka answered just now."""
        now = time.monotonic()
        if self._warned_at is not None:
            self.report(
                f"sink: Kafka at {self.bootstrap} answers again after "
                f"{now - self.last_contact:.0f} s of silence"
            )
            self._warned_at = None
        self.last_contact = now

    def silent_for(self) -> float:
        """Seconds since Kafka last answered."""
        return time.monotonic() - self.last_contact

    def check(self) -> bool:
        """True when Kafka has been silent too long and the sink should stop."""
        silent = self.silent_for()
        if silent < self.timeout:
            return False
        if not self.retry_forever:
            return True
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= self.timeout:
            self.report(
                f"sink: WARNING: no Kafka broker at {self.bootstrap} has answered for "
                f"{silent:.0f} s; still retrying (--retry-forever)"
            )
            self._warned_at = now
        return False

    def lost_message(self) -> str:
        """Why the sink stopped after `check()` said so."""
        return (
            f"no Kafka broker at {self.bootstrap} answered for {self.silent_for():.0f} s "
            f"(--broker-timeout {self.timeout:g}); stopped after landing what was fetched "
            "(pass --retry-forever to keep waiting)"
        )
