"""The shoplens sink as bench_stream times it, run in a process of its own.

Run by bench.bench_stream: `python -m bench.sink_runner DB BOOTSTRAP N GROUP` runs the sink on
the events topic into the DuckDB file DB until it has been idle for 1 s, checks that it read N
messages, and prints `[messages/s, CPU us per message, messages, rejects]` as JSON. As for the
bare loops (`bench.bare_consumers`), the process holds only what a `shoplens sink` process
holds, apart from the broker: not the embedded broker's threads, nor the bench's heap, so its
process CPU is the sink's own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from shoplens.config import EVENTS_TOPIC
from shoplens.stream.sink import BatchHook, Sink, SinkConfig, SinkStore
from shoplens.stream.sink.buffer import Batch
from shoplens.stream.sink.store import PreparedBatch


class CpuMarks(BatchHook):
    """Process CPU time when the writer starts validating its first batch (`watch` the
    sink's store) and after each commit."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0

    def watch(self, store: SinkStore) -> None:
        validate = store.validate

        def first_marked(batch: Batch) -> PreparedBatch:
            if self.first is None:
                self.first = time.process_time()
            return validate(batch)

        store.validate = first_marked  # type: ignore[method-assign]

    def committed(self, prepared: Any) -> None:
        self.last = time.process_time()


def run_sink(db: Path, bootstrap: str, n: int, group: str) -> tuple[float, float, int, int]:
    """The sink into a fresh DuckDB file: (messages/s from the first record buffered to the
    last commit, CPU us per message of this process from the first batch's validation to the
    last commit, messages, rejects)."""
    marks = CpuMarks()
    sink = Sink(
        SinkConfig(
            db=db, bootstrap=bootstrap, group=group, topics=(EVENTS_TOPIC,), stop_when_idle=1.0
        ),
        hook=marks,
    )
    marks.watch(sink.store)
    stats = sink.run()
    if marks.first is None:
        raise SystemExit(f"no batch validated: {stats.line()}")
    return stats.throughput, (marks.last - marks.first) * 1e6 / n, stats.messages, stats.rejects


def main(argv: list[str]) -> None:
    """Run the sink once and print its (messages/s, CPU us per message, messages, rejects)."""
    db, bootstrap, n, group = argv
    print(json.dumps(run_sink(Path(db), bootstrap, int(n), group)))


if __name__ == "__main__":
    main(sys.argv[1:])
