"""Live personalisation: a category recommendation for every session the live scorer scores.

`LiveRecommender` is a sink hook around the `LiveScorer`: it shares the scorer's in-memory
events (staged by the SQL of stg_shop__events) and, for every micro-batch, recommends for the
sessions the scorer scored (in progress, no checkout yet). The features are the SQL dbt
rendered from the macro `session_category_features`, read from `ml.feature_definitions`
(feature_set `session_category`), over those events and the warehouse's customers; the
category_choice model comes from `ml.model_registry` through `registry.load_latest` (sha256 and
scikit-learn version checked before unpickling); the ranking is `shoplens.ml.recommend.recommend`,
the function `ml.session_recommendations` uses too, so live and batch agree on the same events.

Recommendations are written to `live.session_recommendations` (one row per session, rank and
scoring) in the batch's transaction, beside the scores. A session's recommendation is published
to the `ecommerce_recommendations` topic after the commit whenever its top categories change
(the first one included).
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

from shoplens.config import RECOMMENDATIONS_TOPIC
from shoplens.ml import recommend
from shoplens.ml.category import CATEGORY_FEATURES
from shoplens.ml.registry import REGISTRY_TABLE, LoadedModel, RegistryError, load_latest
from shoplens.stream.scorer import LIVE_RELATION, LiveScorer, ScoredBatch
from shoplens.stream.sink import BatchHook
from shoplens.warehouse import connect

RECOMMENDATIONS_TABLE = "live.session_recommendations"
CUSTOMERS = "live_customers"
# Above this many remembered publications, those of evicted sessions are forgotten.
MAX_PUBLISHED = 50_000
MAX_CACHED = 100_000

RECOMMENDATIONS_DDL = f"""
create schema if not exists live;
create table if not exists {RECOMMENDATIONS_TABLE} (
    recommended_at TIMESTAMP, session_id VARCHAR, customer_id BIGINT, rank INTEGER,
    category VARCHAR, score DOUBLE, model_probability DOUBLE, views_so_far BIGINT,
    carts_so_far BIGINT, events_so_far BIGINT, last_event_time TIMESTAMP, model_name VARCHAR,
    model_version INTEGER
);
comment on table {RECOMMENDATIONS_TABLE} is 'Top category recommendations of in-progress
sessions by the live recommender (shoplens sink --score): one row per scoring, session and rank.';
"""


def category_model_registered(db: Path) -> bool:
    """Whether the registry of `db` holds a category model (a small warehouse may have none)."""
    with connect(db, read_only=True) as con:
        try:
            rows = con.execute(
                f"select count(*) from {REGISTRY_TABLE} where model_name = ?", [recommend.MODEL]
            ).fetchall()
        except duckdb.CatalogException:
            return False
    return rows[0][0] > 0


@dataclass
class RecommendedBatch:
    """What `prepare` computed for one batch: the scorer's part and the recommendations."""

    scored: ScoredBatch
    recommendations: pa.Table
    messages: list[dict[str, Any]]


class LiveRecommender(BatchHook):
    """The live scorer plus category recommendations; see the module docstring."""

    def __init__(
        self,
        scorer: LiveScorer,
        model: LoadedModel,
        sql_template: str,
        customers: pa.Table,
    ) -> None:
        if model.features != CATEGORY_FEATURES.columns:
            raise RegistryError(
                f"{model.name} v{model.version} expects features {model.features}, not the "
                f"recommender's {CATEGORY_FEATURES.columns}: rerun `dbt build`"
            )
        self.scorer = scorer
        self.model = model
        # A batch's new inputs are a few dozen rows: one thread predicts them faster than a
        # pool starts (the sink's writer thread runs beside it).
        if hasattr(model.pipeline, "set_params") and "forest" in model.pipeline.named_steps:
            model.pipeline.set_params(forest__n_jobs=1)
        self.mem = scorer.mem
        # The feature query reads only Arrow sources (the customers, the scorer's events of
        # the scored sessions), so it is prepared once (planned at every batch: about 11 ms).
        self.mem.register(CUSTOMERS, customers)
        self.mem.execute(f"prepare recommend_batch as {sql_template}")
        self.published: dict[str, tuple[str, ...]] = {}
        # The category model's probabilities per distinct input (customer and time parts):
        # sessions are rescored with every batch and mostly keep their input.
        self._cache: dict[tuple, np.ndarray] = {}
        self._table_ready = False

    @classmethod
    def from_warehouse(
        cls, db: Path, *, bootstrap: str | None, report: Callable[[str], None] | None = None
    ) -> LiveRecommender:
        """The live scorer of `db` with the verified category model, its feature SQL and the
        customers; raises RegistryError when the warehouse has no category model."""
        scorer = LiveScorer.from_warehouse(db, bootstrap=bootstrap, report=report)
        try:
            with connect(db, read_only=True) as con:
                model = load_latest(con, recommend.MODEL)
                sql = recommend.feature_sql(con, LIVE_RELATION, CUSTOMERS)
                customers = con.sql(
                    "select customer_id, age, gender, country from staging.stg_shop__customers"
                ).to_arrow_table()
        except BaseException:
            scorer.close()
            raise
        hook = cls(scorer, model, sql, customers)
        if report:
            report(
                f"live recommender: {model.name} v{model.version} (sha256 {model.sha256[:12]}), "
                f"{customers.num_rows} customers, top {recommend.TOP_K} to "
                f"{RECOMMENDATIONS_TOPIC}"
            )
        return hook

    def publish_to(self, bootstrap: str) -> None:
        """Publish alerts and recommendations to the cluster at `bootstrap`."""
        self.scorer.publish_to(bootstrap)

    def recommend(self, sessions: list[str]) -> pd.DataFrame:
        """Recommendations for those of `sessions` among the scorer's touched sessions (call
        after `LiveScorer.score`, which sets the events of the sessions it was given)."""
        if not sessions:
            return recommend.recommend(pd.DataFrame(), self.model.pipeline)
        rows = self.mem.sql("execute recommend_batch").df()
        rows = rows[rows["session_id"].isin(sessions)]
        if len(self._cache) > MAX_CACHED:
            self._cache.clear()
        return recommend.recommend(rows, self.model.pipeline, cache=self._cache)

    def _messages(self, recs: pd.DataFrame, now: dt.datetime) -> list[dict[str, Any]]:
        """One message per session whose top categories differ from those last published
        (`recs` as `recommend` returns them: the same number of ranks per session, in order)."""
        if recs.empty:
            return []
        k = int(recs["rank"].max())
        sessions = recs["session_id"].tolist()[::k]
        customers = recs["customer_id"].tolist()[::k]
        events = recs["events_so_far"].tolist()[::k]
        categories = recs["category"].tolist()
        scores = recs["score"].tolist()
        out = []
        for i, session_id in enumerate(sessions):
            top = tuple(categories[i * k : (i + 1) * k])
            if self.published.get(session_id) == top:
                continue
            out.append(
                {
                    "session_id": session_id,
                    "customer_id": None if pd.isna(customers[i]) else int(customers[i]),
                    "categories": [
                        {"category": c, "score": float(v)}
                        for c, v in zip(top, scores[i * k : (i + 1) * k], strict=True)
                    ],
                    "model_name": self.model.name,
                    "model_version": self.model.version,
                    "events_so_far": int(events[i]),
                    "recommended_at": now.isoformat(),
                }
            )
        return out

    # ------------------------------------------------------------------ BatchHook

    def prepare(self, rows: dict[str, pa.Table]) -> RecommendedBatch | None:
        scored = self.scorer.prepare(rows)
        if scored is None:
            return None
        if len(self.published) > MAX_PUBLISHED:
            # Forget sessions the scorer has evicted (idle for SESSION_IDLE_MINUTES).
            live = {
                r[0]
                for r in self.mem.execute("select distinct session_id from live_events").fetchall()
            }
            self.published = {s: top for s, top in self.published.items() if s in live}
        # Stamped like the batch's scores, so a recommendation joins its score on the time.
        stamps = scored.scores["scored_at"].to_pylist()
        now = stamps[0] if stamps else dt.datetime.now(dt.UTC).replace(tzinfo=None)
        recs = self.recommend(scored.scores["session_id"].to_pylist())
        table = pa.table(
            {
                "recommended_at": pa.array([now] * len(recs), pa.timestamp("us")),
                "session_id": pa.array(recs["session_id"], pa.string()),
                "customer_id": pa.array(recs["customer_id"], pa.int64(), from_pandas=True),
                "rank": pa.array(recs["rank"], pa.int32()),
                "category": pa.array(recs["category"], pa.string()),
                "score": pa.array(recs["score"], pa.float64()),
                "model_probability": pa.array(recs["model_probability"], pa.float64()),
                "views_so_far": pa.array(recs["views_so_far"], pa.int64()),
                "carts_so_far": pa.array(recs["carts_so_far"], pa.int64()),
                "events_so_far": pa.array(recs["events_so_far"], pa.int64()),
                "last_event_time": pa.array(recs["last_event_time"], pa.timestamp("us")),
                "model_name": pa.array([self.model.name] * len(recs), pa.string()),
                "model_version": pa.array([self.model.version] * len(recs), pa.int32()),
            }
        )
        return RecommendedBatch(scored, table, self._messages(recs, now))

    def write(self, con: duckdb.DuckDBPyConnection, prepared: RecommendedBatch | None) -> None:
        if prepared is None:
            return
        self.scorer.write(con, prepared.scored)
        if prepared.recommendations.num_rows == 0:
            return
        if not self._table_ready:
            con.execute(RECOMMENDATIONS_DDL)
            self._table_ready = True
        con.register("_live_recommendations", prepared.recommendations)
        try:
            con.execute(f"insert into {RECOMMENDATIONS_TABLE} select * from _live_recommendations")
        finally:
            con.unregister("_live_recommendations")

    def committed(self, prepared: RecommendedBatch | None) -> None:
        if prepared is None:
            return
        self.scorer.committed(prepared.scored)
        producer = self.scorer.producer
        for message in prepared.messages:
            self.published[message["session_id"]] = tuple(
                c["category"] for c in message["categories"]
            )
            if producer is not None:
                producer.send(
                    RECOMMENDATIONS_TOPIC,
                    key=message["session_id"].encode(),
                    value=json.dumps(message).encode(),
                )

    def close(self) -> None:
        self.scorer.close()
