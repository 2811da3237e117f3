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

Raw rows become feature input with the column conventions of `stg_shop__events` (event type
vocabulary, category through `reference.categories`, default quantity, unknown device and
traffic source, row checks, duplicates by event id); the parity test holds the two paths to
the same features and scores.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from kafka import KafkaProducer

from shoplens.config import HIGH_INTENT_TOPIC
from shoplens.ml.registry import DEFAULT_MODEL, LoadedModel, feature_sql, load_latest
from shoplens.stream.clients import KAFKA_API_VERSION
from shoplens.stream.sink import BatchHook
from shoplens.warehouse import connect

SCORES_TABLE = "live.session_scores"
LIVE_RELATION = "live_scoring_events"
# A session without new events for this long (wall clock) is dropped from memory.
SESSION_IDLE_MINUTES = 30
FUTURE_TOLERANCE_HOURS = 24

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

# Raw contract rows → the columns early_intent_features reads, with stg_shop__events'
# conventions. Rows staging would quarantine are left out, as are events already held.
_STAGE_SQL = f"""
insert into live_events
with renamed as (
    select nullif(trim(event_id), '') as event_id, event_time,
           case trim(event_type)
               when 'view' then 'product_view' when 'cart' then 'add_to_cart'
               when 'page_view' then 'page_view' when 'product_view' then 'product_view'
               when 'add_to_cart' then 'add_to_cart'
               when 'remove_from_cart' then 'remove_from_cart'
               when 'checkout' then 'checkout' when 'purchase' then 'purchase'
           end as event_type,
           product_id, nullif(lower(trim(category_code)), '') as category_code, price,
           user_id as customer_id, nullif(trim(user_session), '') as session_id, quantity,
           coalesce(nullif(lower(trim(device)), ''), 'unknown') as device,
           coalesce(nullif(lower(trim(traffic_source)), ''), 'unknown') as traffic_source
    from _live_batch
), usable as (
    select * from renamed
    where event_id is not null and event_time is not null and event_type is not null
      and customer_id is not null and session_id is not null
      and event_time <= now()::timestamp + interval {FUTURE_TOLERANCE_HOURS} hour
      and (price is null or price > 0) and (quantity is null or quantity > 0)
      and event_id not in (select event_id from live_events)
    qualify row_number() over (partition by event_id order by event_time) = 1
)
select u.session_id, u.event_id, u.event_time, u.event_type, u.product_id,
       case when u.product_id is not null or u.category_code is not null
            then coalesce(c.category_name, 'Other') end as category,
       u.price,
       case when u.event_type in ('add_to_cart', 'remove_from_cart', 'purchase')
            then coalesce(u.quantity, 1) else u.quantity end as quantity,
       u.device, u.traffic_source, u.customer_id, now()::timestamp as received_at
from usable u
left join categories c on c.category_top_level = split_part(u.category_code, '.', 1)
"""


@dataclass
class ScoredBatch:
    """What `prepare` computed for one batch."""

    scores: pa.Table
    features: pd.DataFrame
    alerts: list[dict[str, Any]]


class LiveScorer(BatchHook):
    """Scores the sessions each sink batch touches; see the module docstring."""

    def __init__(self, model: LoadedModel, sql_template: str,
                 categories: list[tuple[str, str]], *, producer: KafkaProducer | None = None,
                 report: Callable[[str], None] | None = None) -> None:
        self.model = model
        self.threshold = 0.5 if model.threshold is None else model.threshold
        self.producer = producer
        self.report = report or (lambda line: None)
        self.alerted: set[str] = set()
        self._last_evict = dt.datetime.now(dt.UTC)
        self.mem = duckdb.connect(":memory:")
        self.mem.execute("set TimeZone = 'UTC'")
        self.mem.execute(
            "create table live_events (session_id VARCHAR, event_id VARCHAR, "
            "event_time TIMESTAMP, event_type VARCHAR, product_id BIGINT, category VARCHAR, "
            "price DOUBLE, quantity INTEGER, device VARCHAR, traffic_source VARCHAR, "
            "customer_id BIGINT, received_at TIMESTAMP)")
        self.mem.execute("create table categories (category_top_level VARCHAR, "
                         "category_name VARCHAR)")
        self.mem.executemany("insert into categories values (?, ?)", categories)
        self.mem.execute("create table touched (session_id VARCHAR)")
        self.mem.execute(
            f"create view {LIVE_RELATION} as select * from live_events "
            "where session_id in (select session_id from touched)")
        self._features_sql = sql_template
        self._table_ready = False

    @classmethod
    def from_warehouse(cls, db: Path, *, bootstrap: str | None,
                       report: Callable[[str], None] | None = None) -> LiveScorer:
        """Load the verified model, its feature SQL and the category map from `db`; pick up
        the in-progress sessions and alerts of the last half hour."""
        with connect(db, read_only=True) as con:
            model = load_latest(con, DEFAULT_MODEL)
            template = feature_sql(con, LIVE_RELATION)
            categories = con.execute("select category_top_level, category_name "
                                     "from reference.categories").fetchall()
            tables = {r[0] for r in con.execute(
                "select schema_name || '.' || table_name from duckdb_tables()").fetchall()}
            recent = con.sql(
                "select * from raw.events where source = 'kafka' and user_session in ("
                "select user_session from raw.events where source = 'kafka' and loaded_at >= "
                f"now()::timestamp - interval {SESSION_IDLE_MINUTES} minute)").to_arrow_table()
            alerted = set() if SCORES_TABLE not in tables else {r[0] for r in con.execute(
                f"select distinct session_id from {SCORES_TABLE} where high_intent").fetchall()}
        scorer = cls(model, template, categories, report=report)
        if bootstrap is not None:
            scorer.publish_to(bootstrap)
        scorer.alerted = alerted
        scorer.stage(recent)
        if report:
            report(f"live scorer: {model.name} v{model.version} (sha256 {model.sha256[:12]}, "
                   f"threshold {scorer.threshold:.3f}), {recent.num_rows} recent events")
        return scorer

    def publish_to(self, bootstrap: str) -> None:
        """Send high-intent alerts to the cluster at `bootstrap` (idempotent producer)."""
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, api_version=KAFKA_API_VERSION,
            client_id="shoplens-live-scorer", enable_idempotence=True, acks="all")

    def stage(self, events: pa.Table) -> list[str]:
        """Add raw contract rows to the in-progress events; return the sessions touched."""
        self.mem.register("_live_batch", events)
        try:
            touched = self.mem.execute(
                "select distinct nullif(trim(user_session), '') from _live_batch "
                "where nullif(trim(user_session), '') is not null").fetchall()
            self.mem.execute(_STAGE_SQL)
        finally:
            self.mem.unregister("_live_batch")
        return [t[0] for t in touched]

    def score(self, sessions: list[str]) -> ScoredBatch:
        """Features and scores of those `sessions` still in progress (no checkout yet)."""
        self.mem.execute("delete from touched")
        self.mem.executemany("insert into touched values (?)", [[s] for s in sessions])
        features = self.mem.execute(
            f"with f as ({self._features_sql}), "
            "ctx as (select session_id, any_value(customer_id) as customer_id, "
            "arg_max(event_id, event_time) as last_event_id, max(event_time) as last_event_time, "
            "bool_or(event_type in ('checkout', 'purchase')) as decided "
            f"from {LIVE_RELATION} group by session_id) "
            "select f.*, ctx.customer_id, ctx.last_event_id, ctx.last_event_time "
            "from f join ctx using (session_id) where not ctx.decided "
            "order by f.session_id").df()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        proba = self.model.predict_proba(features) if len(features) else []
        scores = pa.table({
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
        })
        alerts = [
            {"session_id": r["session_id"], "customer_id": r["customer_id"],
             "probability": r["probability"], "threshold": r["threshold"],
             "model_name": r["model_name"], "model_version": r["model_version"],
             "events_so_far": r["events_so_far"], "scored_at": r["scored_at"].isoformat()}
            for r in scores.filter(scores["high_intent"]).to_pylist()
            if r["session_id"] not in self.alerted]
        return ScoredBatch(scores, features, alerts)

    def _evict(self) -> None:
        now = dt.datetime.now(dt.UTC)
        if now - self._last_evict < dt.timedelta(minutes=1):
            return
        self._last_evict = now
        self.mem.execute(
            "delete from live_events where session_id in (select session_id from live_events "
            "group by session_id having max(received_at) < now()::timestamp - interval "
            f"{SESSION_IDLE_MINUTES} minute)")

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
                self.producer.send(HIGH_INTENT_TOPIC, key=alert["session_id"].encode(),
                                   value=json.dumps(alert).encode())

    def close(self) -> None:
        if self.producer is not None:
            self.producer.flush()
            self.producer.close()
        self.mem.close()
