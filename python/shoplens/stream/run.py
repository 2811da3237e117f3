"""What the `shoplens broker / stream / sink` commands run: the pieces wired together."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shoplens.generate import World, load_world
from shoplens.stream.broker import EmbeddedBroker
from shoplens.stream.producer import ProduceStats, produce
from shoplens.stream.replay import Replay, history_replay
from shoplens.stream.sink import Sink, SinkConfig, SinkStats
from shoplens.warehouse import WarehouseError, connect

# One-shot embedded runs keep their offsets apart from a long-lived sink's group: every embedded
# broker starts empty, so the offsets a previous embedded run stored mean nothing to the next.
EMBEDDED_GROUP = "shoplens-sink-embedded"

if TYPE_CHECKING:
    from shoplens.stream.recommender import LiveRecommender
    from shoplens.stream.scorer import LiveScorer


def warehouse_world(db: Path) -> World:
    """The customers and products already in the warehouse (read-only, retrying on lock)."""
    with connect(db, read_only=True) as con:
        try:
            world = load_world(con)
        except Exception as exc:
            raise WarehouseError(
                f"cannot read customers and products from {db}: {str(exc).splitlines()[0]}"
            ) from exc
    if world.n_customers == 0 or world.n_products == 0:
        raise WarehouseError(f"no customers or products in {db}: run `shoplens generate` first")
    return world


def warehouse_replay(db: Path) -> Replay:
    """A simulated clock continuing the warehouse's events, up to now (read-only)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with connect(db, read_only=True) as con:
        try:
            return history_replay(con, until=now)
        except ValueError as exc:
            raise WarehouseError(f"cannot continue the history of {db}: {exc}") from exc


def make_hook(
    db: Path, bootstrap: str | None, score: bool, report: Callable[[str], None]
) -> LiveRecommender | LiveScorer | None:
    """The live scorer with the category recommender as a sink hook when `score` is set (they
    load and check their models; with `bootstrap` None nothing is published until
    `publish_to` is called). A warehouse without a category model gets the scorer alone."""
    if not score:
        return None
    from shoplens.stream.recommender import LiveRecommender, category_model_registered
    from shoplens.stream.scorer import LiveScorer

    if not category_model_registered(db):
        scorer = LiveScorer.from_warehouse(db, bootstrap=bootstrap, report=report)
        report("live recommender off: no category model in the registry (too few order lines?)")
        return scorer
    return LiveRecommender.from_warehouse(db, bootstrap=bootstrap, report=report)


def forget_offsets(db: Path, group: str) -> None:
    """Drop the offsets `group` stored in the warehouse (its next run reads from the start)."""
    with connect(db) as con:
        con.execute("delete from raw.sink_offsets where consumer_group = ?", [group])


@dataclass
class StreamRun:
    """What `shoplens stream` did."""

    produced: ProduceStats
    sunk: SinkStats | None


def stream(
    db: Path,
    bootstrap: str | None,
    *,
    rate: float,
    duration: float,
    seed: int,
    defect_rate: float,
    with_sink: bool,
    score: bool,
    report: Callable[[str], None],
    timestamps: str = "now",
) -> StreamRun:
    """Produce a burst; with `with_sink`, land it in `db` in the same process.

    With `bootstrap` None an embedded broker lives for the duration of the call. The sink
    runs in a thread and stops once everything produced is in the warehouse. `timestamps`
    "simulated" continues the warehouse's history on a simulated clock (`replay.Replay`),
    "now" stamps sessions with the wall clock.
    """
    world = warehouse_world(db)
    replay = warehouse_replay(db) if timestamps == "simulated" else None
    # Load (and verify) the model before anything is streamed.
    hook = make_hook(db, bootstrap, score and with_sink, report)
    with ExitStack() as stack:
        broker = None
        if bootstrap is None:
            broker = stack.enter_context(EmbeddedBroker())
            bootstrap = broker.bootstrap
            report(f"embedded broker at {bootstrap}")
            if hook is not None:
                hook.publish_to(bootstrap)
        embedded = broker is not None
        sink: Sink | None = None
        sunk: list[SinkStats] = []
        failed: list[BaseException] = []
        thread = None
        if with_sink:
            config = SinkConfig(db=db, bootstrap=bootstrap)
            if embedded:
                config.group = EMBEDDED_GROUP
                forget_offsets(db, EMBEDDED_GROUP)
            sink = Sink(config, hook=hook, report=report)

            def _run(sink: Sink) -> None:
                try:
                    sunk.append(sink.run())
                except BaseException as exc:  # re-raised in the calling thread
                    failed.append(exc)

            thread = threading.Thread(target=_run, args=(sink,), name="shoplens-sink", daemon=True)
            thread.start()
        try:
            produced = produce(
                bootstrap,
                world,
                rate=rate,
                duration=duration,
                seed=seed,
                defect_rate=defect_rate,
                report=report,
                replay=replay,
            )
        finally:
            if sink is not None and thread is not None:
                # Let the sink catch up with everything produced, then stop it.
                sink.config.stop_when_idle = 1.0
                thread.join()
        if failed:
            raise failed[0]
        return StreamRun(produced, sunk[0] if sunk else None)
