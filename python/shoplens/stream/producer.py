"""The producer: new sessions of the warehouse's customers, streamed as JSON at a steady rate.

Events go to `ecommerce_events` keyed by session id (a session stays in one partition, in
order); each order line goes to `ecommerce_transactions` keyed by customer id, right after its
purchase event. Messages follow the topic contracts in `contract.py` (naive UTC timestamps as
ISO strings). The kafka-python producer is idempotent with `acks=all` and unbounded retries,
so a broker that drops out for a while delays messages but neither loses nor duplicates them.

Event times are either the wall clock (sessions start while they are sent: what the latency
benchmark measures) or simulated (`replay.Replay`: the sessions continue the warehouse's
history at its own pace, following the shop's time-of-day curve).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from kafka import KafkaProducer

from shoplens.config import EVENTS_TOPIC, TRANSACTIONS_TOPIC
from shoplens.generate import World, simulate_sessions
from shoplens.stream.clients import KAFKA_API_VERSION
from shoplens.stream.contract import EVENTS, TRANSACTIONS
from shoplens.stream.replay import Replay

# Sessions simulated per chunk are sized from this guess of events per session, then topped up.
EVENTS_PER_SESSION_GUESS = 6


@dataclass
class ProduceStats:
    """What a producer run sent."""

    events: int = 0
    transactions: int = 0
    failed: int = 0
    sessions: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    last_event_time: dt.datetime | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def line(self) -> str:
        """A one-line progress report."""
        rate = self.events / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"stream: {self.events:,} events, {self.transactions:,} order lines, "
            f"{len(self.sessions):,} sessions, {rate:,.0f} events/s"
        )


def _json_default(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(row: dict[str, Any]) -> bytes:
    """One contract row as compact JSON bytes."""
    return json.dumps(row, separators=(",", ":"), default=_json_default).encode()


def _rows(table: pa.Table, columns: list[str]) -> list[dict[str, Any]]:
    return table.select(columns).to_pylist()


def _paired(
    events: pa.Table, transactions: pa.Table, limit: int
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The first `limit` events, each with its order lines."""
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in _rows(transactions, TRANSACTIONS.columns):
        lines.setdefault(line["event_id"], []).append(line)
    for event in _rows(events.slice(0, limit), EVENTS.columns):
        yield event, lines.get(event["event_id"], [])


def session_stream(
    world: World,
    n_events: int,
    start: dt.datetime,
    span: dt.timedelta,
    seed: int,
    id_prefix: str,
    defect_rate: float = 0.0,
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Yield `n_events` (event, its order lines) pairs of new sessions, in arrival order.

    Sessions start in [start, start + span) and are simulated in chunks; the stream stops after
    `n_events` events, so the last sessions are still in progress.
    """
    sent, chunk = 0, 0
    while sent < n_events:
        need = n_events - sent
        sessions = max(10, math.ceil(need / EVENTS_PER_SESSION_GUESS))
        events, transactions = simulate_sessions(
            world,
            sessions,
            start,
            start + span,
            seed=seed + chunk,
            id_prefix=f"{id_prefix}c{chunk}-",
            defect_rate=defect_rate,
        )
        yield from _paired(events, transactions, need)
        sent += min(need, events.num_rows)
        chunk += 1


def replay_stream(
    world: World,
    n_events: int,
    replay: Replay,
    seed: int,
    id_prefix: str,
    defect_rate: float = 0.0,
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Like `session_stream`, on `replay`'s simulated clock: each chunk of sessions starts
    where the previous one ended, at the history's pace; stops after `n_events` events or when
    the clock reaches `replay.until`."""
    sent, chunk, clock = 0, 0, replay.start
    while sent < n_events:
        need = n_events - sent
        end, sessions = replay.advance(clock, max(10, math.ceil(need / EVENTS_PER_SESSION_GUESS)))
        if sessions == 0 or end <= clock:
            return
        events, transactions = simulate_sessions(
            world,
            sessions,
            clock,
            end,
            seed=seed + chunk,
            id_prefix=f"{id_prefix}c{chunk}-",
            defect_rate=defect_rate,
        )
        events = events.filter(pc.invert(_not_yet_happened(events["event_time"], replay.until)))
        yield from _paired(events, transactions, need)
        sent += min(need, events.num_rows)
        chunk, clock = chunk + 1, end


def _not_yet_happened(times: pa.ChunkedArray, now: dt.datetime) -> pa.ChunkedArray:
    """True for the events of sessions still under way at `now`: after it, by less than a day.

    A session that starts just before the present has later events that have not happened yet;
    they are not sent. Defective events planted years ahead (`defect_rate`) are kept.
    """
    ahead = pc.subtract(times, pa.scalar(now, times.type))
    under_way = pc.and_(
        pc.greater(ahead, pa.scalar(dt.timedelta(0), ahead.type)),
        pc.less_equal(ahead, pa.scalar(dt.timedelta(days=1), ahead.type)),
    )
    return pc.fill_null(under_way, False)  # a missing time (a planted defect) is sent as it is


def make_producer(bootstrap: str) -> KafkaProducer:
    """An idempotent kafka-python producer (acks=all, retries until delivery timeout)."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        api_version=KAFKA_API_VERSION,
        client_id="shoplens-producer",
        linger_ms=5,
        batch_size=64 * 1024,
        enable_idempotence=True,
        acks="all",
    )


def produce(
    bootstrap: str,
    world: World,
    *,
    rate: float,
    duration: float,
    seed: int = 0,
    id_prefix: str | None = None,
    defect_rate: float = 0.0,
    report: Callable[[str], None] | None = None,
    progress_every: float = 2.0,
    stop: threading.Event | None = None,
    on_sent: Callable[[dict[str, Any]], None] | None = None,
    replay: Replay | None = None,
) -> ProduceStats:
    """Stream `rate * duration` events at `rate` events/s; returns what was sent.

    Sessions start at the wall clock, or on `replay`'s simulated clock (then the stream ends
    early if that clock catches up with the present). Raises RuntimeError when some messages
    could not be delivered (after the producer's own retries). `on_sent` sees every event as
    it is handed to the client.
    """
    report = report or (lambda line: None)
    stop = stop or threading.Event()
    n_events = max(1, round(rate * duration))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    prefix = id_prefix or f"k{now:%Y%m%d%H%M%S%f}-"
    stats = ProduceStats()
    errors: list[BaseException] = []

    def failed(exc: BaseException) -> None:
        stats.failed += 1
        errors.append(exc)

    producer = make_producer(bootstrap)
    try:
        last_progress = time.monotonic()
        if replay is None:
            stream = session_stream(
                world,
                n_events,
                now,
                dt.timedelta(seconds=max(duration, 1.0)),
                seed,
                prefix,
                defect_rate,
            )
        else:
            report(
                f"simulated time from {replay.start:%Y-%m-%d %H:%M} at the history's pace "
                f"(about {replay.sessions_per_day(replay.start.date()):,.0f} sessions a day), "
                f"never past {replay.until:%Y-%m-%d %H:%M} UTC"
            )
            stream = replay_stream(world, n_events, replay, seed, prefix, defect_rate)
        for i, (event, lines) in enumerate(stream):
            if stop.is_set():
                break
            # Steady pacing: event i is due at started + i / rate.
            wait = stats.started + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            producer.send(
                EVENTS_TOPIC,
                key=event["user_session"].encode() if event["user_session"] else None,
                value=encode(event),
            ).add_errback(failed)
            stats.events += 1
            stats.sessions.add(event["user_session"])
            stats.last_event_time = max(
                stats.last_event_time or event["event_time"], event["event_time"]
            )
            for line in lines:
                producer.send(
                    TRANSACTIONS_TOPIC, key=str(line["customer_id"]).encode(), value=encode(line)
                ).add_errback(failed)
                stats.transactions += 1
            if on_sent is not None:
                on_sent(event)
            if time.monotonic() - last_progress >= progress_every:
                report(stats.line())
                last_progress = time.monotonic()
        producer.flush()
    finally:
        producer.close()
    stats.finished = time.monotonic()
    report(stats.line())
    if replay is not None and stats.last_event_time is not None:
        caught_up = (
            " (caught up with the present)" if stats.events < n_events and not stop.is_set() else ""
        )
        report(f"simulated time reached {stats.last_event_time:%Y-%m-%d %H:%M}{caught_up}")
    if errors:
        raise RuntimeError(f"{stats.failed} message(s) were not delivered: {errors[0]}")
    return stats
