"""What a sink run did (`SinkStats`), as a progress line and as JSON."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from shoplens.stream.sink.config import EXIT_GAPS, EXIT_KAFKA, STALL_SECONDS


@dataclass
class SinkStats:
    """What a sink run did."""

    messages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    batches: int = 0
    conflicts: int = 0
    lock_waits: int = 0
    reseeks: int = 0
    gaps: int = 0  # gaps recorded in raw.sink_gaps by this run
    missing: int = 0  # messages in those gaps
    lag: int | None = None
    # Why the run ended: "stop" (asked to), "idle", "idle_kafka_silent", "kafka_lost",
    # "kafka_unreachable"; with `problem` the one-line reason when that is a failure.
    stopped: str = "stop"
    problem: str | None = None
    kafka_silent: float = 0.0  # seconds since Kafka last answered, as of the last check
    started: float = field(default_factory=time.monotonic)
    first_record: float | None = None  # monotonic time the first record was buffered
    last_commit: float | None = None  # monotonic time the last batch committed

    @property
    def throughput(self) -> float:
        """Messages per second from the first record buffered to the last commit."""
        if self.first_record is None or self.last_commit is None:
            return 0.0
        return self.messages / max(self.last_commit - self.first_record, 1e-9)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        """A one-line progress report."""
        rate = self.messages / self.elapsed if self.elapsed > 0 else 0.0
        rows = ", ".join(f"{n:,} {t.split('.')[-1]}" for t, n in sorted(self.rows.items()))
        lag = "?" if self.lag is None else f"{self.lag:,}"
        if self.lag is None and self.kafka_silent >= STALL_SECONDS:
            lag += f" (no answer from Kafka for {self.kafka_silent:.0f} s)"
        gaps = (
            f", {self.gaps:,} gaps ({self.missing:,} messages deleted unread)" if self.gaps else ""
        )
        return (
            f"sink: {self.messages:,} messages ({rows or 'no rows'}, {self.rejects:,} "
            f"rejects{gaps}) in {self.batches:,} batches, {rate:,.0f} msg/s, lag {lag}"
        )

    @property
    def exit_code(self) -> int:
        """0, or EXIT_GAPS when messages were deleted unread (that outranks Kafka trouble),
        or EXIT_KAFKA when Kafka was unreachable, lost, or silent at an idle stop."""
        if self.gaps:
            return EXIT_GAPS
        return EXIT_KAFKA if self.problem else 0

    def failure(self) -> str | None:
        """The one-line reason for a non-zero exit code (None when it is 0)."""
        parts = []
        if self.gaps:
            parts.append(
                f"{self.missing:,} messages in {self.gaps:,} gaps were deleted by the broker "
                "before the sink read them (recorded in raw.sink_gaps)"
            )
        if self.problem:
            parts.append(self.problem)
        return "; ".join(parts) or None


def stats_json(stats: SinkStats) -> str:
    """Machine-readable summary of a run (printed by `shoplens sink --json`)."""
    return json.dumps(
        {
            "messages": stats.messages,
            "rows": stats.rows,
            "rejects": stats.rejects,
            "batches": stats.batches,
            "conflicts": stats.conflicts,
            "lock_waits": stats.lock_waits,
            "reseeks": stats.reseeks,
            "gaps": stats.gaps,
            "missing": stats.missing,
            "lag": stats.lag,
            "stopped": stats.stopped,
            "exit_code": stats.exit_code,
            "seconds": round(stats.elapsed, 3),
        },
        sort_keys=True,
    )
