"""Live scoring: in-progress sessions rated by the latest purchase-intent model, as they stream.

The scorer is a sink hook (`BatchHook`). It keeps the events of in-progress sessions in an
in-memory DuckDB table and, for every micro-batch, runs the training feature SQL over the
sessions the batch touched. That SQL is not a copy: it is what dbt rendered from the macro
`early_intent_features`, read from `ml.feature_definitions` (`registry.feature_sql`). The model
comes from `ml.model_registry` through `registry.load_latest`, which checks the stored sha256
and scikit-learn version before unpickling and refuses a mismatch.

Scores are written to `live.session_scores` in the same transaction as the batch's rows, so a
score is never visible without its events. Sessions at or over the model's threshold are
published once to the `ecommerce_high_intent` topic after the commit (at least once: a crash
between commit and publish re-sends nothing, a crash before the commit re-scores the batch).

Raw rows become feature input through the SQL of `stg_shop__events` itself (trims, event type
vocabulary, row checks, deduplication, category names), also read from `ml.feature_definitions`
(`registry.staging_sql`); the parity test holds the two paths to the same features and scores.

Both queries are prepared once over registered Arrow sources (the batch, the category map, the
events of the sessions being scored): DuckDB 2.0 plans a statement that reads a table again at
every execution, which cost more CPU per micro-batch than running it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from kafka import KafkaProducer

from shoplens.config import HIGH_INTENT_TOPIC
from shoplens.ml.registry import (
    DEFAULT_MODEL,
    LoadedModel,
    feature_sql,
    load_latest,
    staging_sql,
)
from shoplens.stream.clients import KAFKA_API_VERSION
from shoplens.stream.contract import EVENTS, CurrentBatch
from shoplens.stream.sink import BatchHook
from shoplens.warehouse import connect

SCORES_TABLE = "live.session_scores"
LIVE_RELATION = "live_scoring_events"
# The raw rows of the batch being staged, and the category map (reference.categories).
RAW_BATCH = "_live_batch"
CATEGORIES = "categories"
# A session without new events for this long (wall clock) is dropped from memory.
SESSION_IDLE_MINUTES = 30

SCORES_DDL = f"""
create schema if not exists live;
create table if not exists {SCORES_TABLE} (
    scored_at TIMESTAMP, session_id VARCHAR, customer_id BIGINT, model_name VARCHAR,
    model_version INTEGER, events_so_far BIGINT, last_event_id VARCHAR,
    last_event_time TIMESTAMP, probability DOUBLE, threshold DOUBLE, high_intent BOOLEAN
);
comment on table {SCORES_TABLE} is 'One row per scoring of an in-progress session by the live
scorer (shoplens sink --score): the purchase-intent probability after the events seen so far.';
"""

# Staged events (the rows stg_shop__events would hold) → the in-progress events, unless held.
_HOLD_SQL = """
insert into live_events
select user_session, event_id, event_time, event_type, product_id, category, price, quantity,
       device, traffic_source, customer_id, now()::timestamp
from _staged
where user_session is not null
    and event_id not in (select event_id from live_events)
"""
# The in-progress events (table live_events) and the scored sessions' part of them.
LIVE_EVENTS_SCHEMA = pa.schema(
    [
        ("session_id", pa.string()),
        ("event_id", pa.string()),
        ("event_time", pa.timestamp("us")),
        ("event_type", pa.string()),
        ("product_id", pa.int64()),
        ("category", pa.string()),
        ("price", pa.float64()),
        ("quantity", pa.int32()),
        ("device", pa.string()),
        ("traffic_source", pa.string()),
        ("customer_id", pa.int64()),
        ("received_at", pa.timestamp("us")),
    ]
)
# Raw rows as the staging SQL reads them: the contract's columns, then source and loaded_at.
_ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "number": pa.float64(),
}
RAW_EVENTS_SCHEMA = pa.schema(
    [(f.name, _ARROW_TYPES[f.kind]) for f in EVENTS.fields]
    + [("source", pa.string()), ("loaded_at", pa.timestamp("us"))]
)


def _score_sql(features_sql: str) -> str:
    """The features of the scored sessions still in progress (no checkout or purchase yet),
    with their customer and last event: `features_sql` over LIVE_RELATION plus context."""
    return (
        f"with f as ({features_sql}), "
        "ctx as (select session_id, any_value(customer_id) as customer_id, "
        "arg_max(event_id, event_time) as last_event_id, max(event_time) as last_event_time, "
        "bool_or(event_type in ('checkout', 'purchase')) as decided "
        f"from {LIVE_RELATION} group by session_id) "
        "select f.*, ctx.customer_id, ctx.last_event_id, ctx.last_event_time "
        "from f join ctx using (session_id) where not ctx.decided "
        "order by f.session_id"
    )


@dataclass
class ScoredBatch:
    """What `prepare` computed for one batch."""

    scores: pa.Table
    features: pd.DataFrame
    alerts: list[dict[str, Any]]


class LiveScorer(BatchHook):
    """Scores the sessions each sink batch touches; see the module docstring."""

    def __init__(
        self,
        model: LoadedModel,
        sql_template: str,
        staging_template: str,
        categories: list[tuple[str, str]],
        *,
        producer: KafkaProducer | None = None,
        report: Callable[[str], None] | None = None,
    ) -> None:
        # The registry loads it predicting on one thread, which also costs less CPU for a
        # batch's few hundred sessions than a pool of two (584 sessions: 14 against 21 ms).
        self.model = model
        self.threshold = 0.5 if model.threshold is None else model.threshold
        self.producer = producer
        self.report = report or (lambda line: None)
        self.alerted: set[str] = set()
        self._last_evict = dt.datetime.now(dt.UTC)
        self.mem = duckdb.connect(":memory:")
        self.mem.execute("set TimeZone = 'UTC'")
        self.mem.register("_empty", LIVE_EVENTS_SCHEMA.empty_table())
        self.mem.execute("create table live_events as select * from _empty")
        self.mem.unregister("_empty")
        # The staging SQL reads only registered Arrow sources (the category map and the
        # current batch), so it is prepared once: planned at every batch it cost about 35 ms
        # of CPU, run prepared 7 ms (1,000 events).
        self.mem.register(
            CATEGORIES,
            pa.table(
                {
                    "category_top_level": pa.array([c[0] for c in categories], pa.string()),
                    "category_name": pa.array([c[1] for c in categories], pa.string()),
                }
            ),
        )
        self._batch = CurrentBatch(RAW_EVENTS_SCHEMA)
        self.mem.register(RAW_BATCH, self._batch)
        # The events of the sessions being scored, as an Arrow source: the feature query reads
        # nothing else, so it is prepared once too (planned at every batch: about 25 ms).
        self._touched = CurrentBatch(LIVE_EVENTS_SCHEMA)
        self.mem.register(LIVE_RELATION, self._touched)
        self.mem.execute(f"prepare stage_batch as {staging_template}")
        self.mem.execute(f"prepare score_batch as {_score_sql(sql_template)}")
        self._table_ready = False

    @classmethod
    def from_warehouse(
        cls, db: Path, *, bootstrap: str | None, report: Callable[[str], None] | None = None
    ) -> LiveScorer:
        """Load the verified model, its feature SQL and the category map from `db`; pick up
        the in-progress sessions and alerts of the last half hour."""
        with connect(db, read_only=True) as con:
            model = load_latest(con, DEFAULT_MODEL)
            template = feature_sql(con, LIVE_RELATION)
            staging = staging_sql(con, RAW_BATCH, CATEGORIES)
            categories = con.execute(
                "select category_top_level, category_name from reference.categories"
            ).fetchall()
            tables = {
                r[0]
                for r in con.execute(
                    "select schema_name || '.' || table_name from duckdb_tables()"
                ).fetchall()
            }
            recent = con.sql(
                "select * from raw.events where source = 'kafka' and user_session in ("
                "select user_session from raw.events where source = 'kafka' and loaded_at >= "
                f"now()::timestamp - interval {SESSION_IDLE_MINUTES} minute)"
            ).to_arrow_table()
            alerted = (
                set()
                if SCORES_TABLE not in tables
                else {
                    r[0]
                    for r in con.execute(
                        f"select distinct session_id from {SCORES_TABLE} where high_intent"
                    ).fetchall()
                }
            )
        scorer = cls(model, template, staging, categories, report=report)
        if bootstrap is not None:
            scorer.publish_to(bootstrap)
        scorer.alerted = alerted
        scorer.stage(recent)
        if report:
            report(
                f"live scorer: {model.name} v{model.version} (sha256 {model.sha256[:12]}, "
                f"threshold {scorer.threshold:.3f}), {recent.num_rows} recent events"
            )
        return scorer

    def publish_to(self, bootstrap: str) -> None:
        """Send high-intent alerts to the cluster at `bootstrap` (idempotent producer)."""
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            api_version=KAFKA_API_VERSION,
            client_id="shoplens-live-scorer",
            enable_idempotence=True,
            acks="all",
        )

    def stage(self, events: pa.Table) -> list[str]:
        """Add raw contract rows (`source` and `loaded_at` optional: a sink batch has neither,
        and is stamped as loaded now by kafka) to the in-progress events; return the sessions
        touched."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if "source" not in events.column_names:
            events = events.append_column(
                "source", pa.array(["kafka"] * events.num_rows, pa.string())
            )
        if "loaded_at" not in events.column_names:
            events = events.append_column(
                "loaded_at", pa.array([now] * events.num_rows, pa.timestamp("us"))
            )
        self._batch.table = events.select(RAW_EVENTS_SCHEMA.names).cast(RAW_EVENTS_SCHEMA)
        try:
            touched = self.mem.execute(
                f"select distinct nullif(trim(user_session), '') from {RAW_BATCH} "
                "where nullif(trim(user_session), '') is not null"
            ).fetchall()
            staged = self.mem.sql("execute stage_batch").to_arrow_table()
        finally:
            self._batch.table = RAW_EVENTS_SCHEMA.empty_table()
        self.mem.register("_staged", staged)
        try:
            self.mem.execute(_HOLD_SQL)
        finally:
            self.mem.unregister("_staged")
        return [t[0] for t in touched]

    def score(self, sessions: list[str]) -> ScoredBatch:
        """Features and scores of those `sessions` still in progress (no checkout yet)."""
        # Their events, read with one small query; they stay in the Arrow source until the
        # next batch (the recommender reads them after this).
        self.mem.register("_touched", pa.table({"session_id": pa.array(sessions, pa.string())}))
        try:
            self._touched.table = (
                self.mem.sql(
                    "select * from live_events where session_id in "
                    "(select session_id from _touched)"
                )
                .to_arrow_table()
                .cast(LIVE_EVENTS_SCHEMA)
            )
        finally:
            self.mem.unregister("_touched")
        features = self.mem.sql("execute score_batch").df()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        proba: np.ndarray | list[float] = (
            self.model.predict_proba(features) if len(features) else []
        )
        scores = pa.table(
            {
                "scored_at": pa.array([now] * len(features), pa.timestamp("us")),
                "session_id": pa.array(features["session_id"], pa.string()),
                "customer_id": pa.array(features["customer_id"], pa.int64()),
                "model_name": pa.array([self.model.name] * len(features), pa.string()),
                "model_version": pa.array([self.model.version] * len(features), pa.int32()),
                "events_so_far": pa.array(features["events_so_far"], pa.int64()),
                "last_event_id": pa.array(features["last_event_id"], pa.string()),
                "last_event_time": pa.array(features["last_event_time"], pa.timestamp("us")),
                "probability": pa.array(proba, pa.float64()),
                "threshold": pa.array([self.threshold] * len(features), pa.float64()),
                "high_intent": pa.array([p >= self.threshold for p in proba], pa.bool_()),
            }
        )
        alerts = [
            {
                "session_id": r["session_id"],
                "customer_id": r["customer_id"],
                "probability": r["probability"],
                "threshold": r["threshold"],
                "model_name": r["model_name"],
                "model_version": r["model_version"],
                "events_so_far": r["events_so_far"],
                "scored_at": r["scored_at"].isoformat(),
            }
            for r in scores.filter(scores["high_intent"]).to_pylist()
            if r["session_id"] not in self.alerted
        ]
        return ScoredBatch(scores, features, alerts)

    def _evict(self) -> None:
        now = dt.datetime.now(dt.UTC)
        if now - self._last_evict < dt.timedelta(minutes=1):
            return
        self._last_evict = now
        self.mem.execute(
            "delete from live_events where session_id in (select session_id from live_events "
            "group by session_id having max(received_at) < now()::timestamp - interval "
            f"{SESSION_IDLE_MINUTES} minute)"
        )

    # ------------------------------------------------------------------ BatchHook

    def prepare(self, rows: dict[str, pa.Table]) -> ScoredBatch | None:
        events = rows.get("raw.events")
        if events is None or events.num_rows == 0:
            return None
        self._evict()
        return self.score(self.stage(events))

    def write(self, con: duckdb.DuckDBPyConnection, prepared: ScoredBatch | None) -> None:
        if prepared is None or prepared.scores.num_rows == 0:
            return
        if not self._table_ready:
            con.execute(SCORES_DDL)
            self._table_ready = True
        con.register("_live_scores", prepared.scores)
        try:
            con.execute(f"insert into {SCORES_TABLE} select * from _live_scores")
        finally:
            con.unregister("_live_scores")

    def committed(self, prepared: ScoredBatch | None) -> None:
        if prepared is None:
            return
        for alert in prepared.alerts:
            self.alerted.add(alert["session_id"])
            if self.producer is not None:
                self.producer.send(
                    HIGH_INTENT_TOPIC,
                    key=alert["session_id"].encode(),
                    value=json.dumps(alert).encode(),
                )

    def close(self) -> None:
        if self.producer is not None:
            self.producer.flush()
            self.producer.close()
        self.mem.close()
