"""Category recommendations for sessions in progress, and their offline evaluation.

A session's recommendation combines the category_choice model (the buyer's age, gender and
country, the hour, weekday and month) with the session's own history so far: categories viewed
and carted before its first checkout or purchase. The model's class probabilities act as a
prior worth `PRIOR_WEIGHT` events; each product view adds one to its category, each cart add
`CART_WEIGHT`. Scores are the normalised result (they sum to one over the categories):

    score(c) = (PRIOR_WEIGHT * p_model(c) + views(c) + CART_WEIGHT * carts(c))
               / (PRIOR_WEIGHT + views + CART_WEIGHT * carts)

The input rows come from the SQL of the macro `session_category_features`: dbt renders it for
`intermediate.int_sessions_category_featurized` (batch) and stores it in
`ml.feature_definitions` (feature_set `session_category`) for the live recommender, so both
paths read one definition and call `recommend` here.

`evaluate` measures hit rate at 1 and 3 on a time hold-out (the latest sessions with a purchase)
against the honest baselines: the most popular category before the cut-off and the customer's
most viewed category so far.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from shoplens.ml.batches import BATCH_ROWS, read_batches, stream
from shoplens.ml.category import CATEGORY_FEATURES
from shoplens.ml.features import ForestParams, forest_pipeline
from shoplens.ml.registry import FEATURE_DEFINITIONS_TABLE, RegistryError
from shoplens.ml.reuse import quote_identifier

FEATURE_SET = "session_category"
MODEL = "category_choice"
TOP_K = 3
# The category model's prior counts as this many events of evidence; a cart add as this many views.
PRIOR_WEIGHT = 2.0
CART_WEIGHT = 3.0
# History cuts of int_sessions_category_featurized: what the live recommender sees (events
# before the first checkout or purchase) and, for the evaluation, events before the first cart add.
LIVE_CUT = "before_checkout"
BROWSING_CUT = "browsing"
# Share of the evaluated sessions (the latest, by recommendation time) held out.
HOLDOUT_SHARE = 0.2
MIN_TEST_SESSIONS = 10
MIN_TRAINING_LINES = 20
# Method names of the evaluation; the first two are the baselines.
METHODS = {
    "most_popular": "most popular category (before the cut-off)",
    "customer_most_viewed": "customer's most viewed category so far",
    "category_model": "category model alone (demographics, hour, weekday, month)",
    "session_history": "session history alone (popularity as prior)",
    "recommender": "category model + session history (deployed)",
}
BASELINES = ("most_popular", "customer_most_viewed")

RECOMMENDATION_COLUMNS = {
    "session_id": "str",
    "customer_id": "Int64",
    "last_event_time": "datetime64[us]",
    "events_so_far": "int64",
    "rank": "int64",
    "category": "str",
    "score": "float64",
    "model_probability": "float64",
    "views_so_far": "int64",
    "carts_so_far": "int64",
}
EVALUATION_COLUMNS = {
    "history_cut": "str",
    "method": "str",
    "description": "str",
    "is_baseline": "bool",
    "k": "int64",
    "hit_rate": "float64",
    "hits": "int64",
    "sessions": "int64",
    "best_baseline_hit_rate": "float64",
    "cutoff_time": "datetime64[us]",
    "training_lines": "int64",
    "model_name": "str",
    "model_version": "int64",
}


def feature_sql(
    con: duckdb.DuckDBPyConnection,
    events_relation: str,
    customers_relation: str,
    *,
    table: str = FEATURE_DEFINITIONS_TABLE,
) -> str:
    """The session-category feature SQL as dbt rendered it, over `events_relation` (staged
    events: session_id, customer_id, event_time, event_type, category) and
    `customers_relation` (customer_id, age, gender, country)."""
    try:
        rows = con.execute(
            f"select feature_sql, relation_placeholder, customers_placeholder from {table} "
            "where feature_set = ?",
            [FEATURE_SET],
        ).fetchall()
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        raise RegistryError(
            f"{table} has no session-category features: run `dbt build` first"
        ) from exc
    if not rows:
        raise RegistryError(f"feature set {FEATURE_SET!r} is not in {table}: run `dbt build`")
    sql, events, customers = rows[0]
    return sql.replace(events, events_relation).replace(customers, customers_relation)


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def model_probabilities(
    pipeline: Any, context: pd.DataFrame, cache: dict[tuple, np.ndarray] | None = None
) -> np.ndarray:
    """Class probabilities of the category model per row of `context` (one row per session
    with the model's input columns). Each distinct input is predicted once; with `cache` (the
    live recommender's, kept across batches) inputs predicted before are not predicted again."""
    matrix = CATEGORY_FEATURES.matrix(context)
    if matrix.empty:
        return np.zeros((0, len(pipeline.classes_)))
    columns = [[None if v != v else v for v in matrix[c].tolist()] for c in matrix.columns]
    keys = list(zip(*columns, strict=True))
    known = {} if cache is None else cache
    todo: dict[tuple, int] = {}
    for i, key in enumerate(keys):
        if key not in known and key not in todo:
            todo[key] = i
    if todo:
        proba = np.asarray(pipeline.predict_proba(matrix.iloc[list(todo.values())]))
        known.update(zip(todo, proba, strict=True))
    return np.stack([known[key] for key in keys])


def blend(prior: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """The recommendation scores: the prior worth PRIOR_WEIGHT events plus the evidence,
    normalised per row."""
    total = PRIOR_WEIGHT * prior + evidence
    return total / total.sum(axis=1, keepdims=True)


def top_k(scores: np.ndarray, categories: list[str], k: int) -> np.ndarray:
    """Column indices of the k best categories per row (ties: category name)."""
    names = np.argsort(np.argsort(np.asarray(categories, dtype=object)))
    order = np.lexsort((np.broadcast_to(names, scores.shape), -scores), axis=1)
    return order[:, : min(k, len(categories))]


def recommend(
    rows: pd.DataFrame,
    pipeline: Any,
    k: int = TOP_K,
    cache: dict[tuple, np.ndarray] | None = None,
    seen: Collection[str] | None = None,
) -> pd.DataFrame:
    """Top-k categories per session from rows of the session-category feature SQL, scored by
    `pipeline` (the category_choice model, predictions kept in `cache` when given) blended with
    the session's history. The candidates are the model's classes and the categories `seen`
    (default: those of `rows`; a caller scoring a table in batches passes the table's)."""
    if rows.empty:
        return _empty(RECOMMENDATION_COLUMNS)
    context = rows.drop_duplicates("session_id").sort_values("session_id", kind="stable")
    context = context.reset_index(drop=True)
    sessions = pd.Index(context["session_id"])
    classes = [str(c) for c in pipeline.classes_]
    if seen is None:
        seen = rows["category"].dropna().astype(str).unique().tolist()
    categories = classes + sorted(set(seen) - set(classes))
    prior = np.zeros((len(context), len(categories)))
    prior[:, : len(classes)] = model_probabilities(pipeline, context, cache)
    hist = rows.dropna(subset=["category"])
    views = _counts(hist, sessions, categories, "views_so_far")
    carts = _counts(hist, sessions, categories, "carts_so_far")
    scores = blend(prior, views + CART_WEIGHT * carts)
    best = top_k(scores, categories, k)
    n, kk = best.shape
    row_idx = np.repeat(np.arange(n), kk)
    col_idx = best.ravel()
    out = pd.DataFrame(
        {
            "session_id": context["session_id"].to_numpy()[row_idx],
            "customer_id": context["customer_id"].to_numpy()[row_idx],
            "last_event_time": context["last_event_time"].to_numpy()[row_idx],
            "events_so_far": context["events_so_far"].to_numpy()[row_idx],
            "rank": np.tile(np.arange(1, kk + 1), n),
            "category": np.asarray(categories, dtype=object)[col_idx],
            "score": scores[row_idx, col_idx],
            "model_probability": prior[row_idx, col_idx],
            "views_so_far": views[row_idx, col_idx],
            "carts_so_far": carts[row_idx, col_idx],
        }
    )
    return out.astype(RECOMMENDATION_COLUMNS)


def _counts(
    hist: pd.DataFrame, sessions: pd.Index, categories: list[str], column: str
) -> np.ndarray:
    out = np.zeros((len(sessions), len(categories)))
    if len(hist):
        r = sessions.get_indexer(hist["session_id"])
        c = pd.Index(categories).get_indexer(hist["category"].astype(str))
        np.add.at(out, (r, c), hist[column].to_numpy(float))
    return out


# --- batch -----------------------------------------------------------------------------------


def _dtype_to_arrow(dtype: str) -> pa.DataType:
    return {
        "str": pa.string(),
        "Int64": pa.int64(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "datetime64[us]": pa.timestamp("us"),
    }[dtype]


SESSION_RECOMMENDATION_COLUMNS = {
    **RECOMMENDATION_COLUMNS,
    "model_name": "str",
    "model_version": "int64",
    "sessionization_key": "str",
    "features_built_at": "datetime64[us]",
}
SESSION_RECOMMENDATION_SCHEMA = pa.schema(
    [(c, _dtype_to_arrow(t)) for c, t in SESSION_RECOMMENDATION_COLUMNS.items()]
)
# The columns of int_sessions_category_featurized that recommending reads.
RECOMMENDATION_INPUT_COLUMNS = [
    "session_id",
    "customer_id",
    "last_event_time",
    "events_so_far",
    *CATEGORY_FEATURES.columns,
    "category",
    "views_so_far",
    "carts_so_far",
    "sessionization_key",
    "built_at",
]


def _whole_sessions(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Frames of rows ordered by session_id, regrouped so that no session spans two frames (the
    rows of each frame's last session wait for the next frame)."""
    held: pd.DataFrame | None = None
    for frame in frames:
        if held is not None:
            frame = pd.concat([held, frame], ignore_index=True)
        last = frame["session_id"].iloc[-1]
        tail = (frame["session_id"] == last).to_numpy()
        held = frame[tail]
        if not tail.all():
            yield frame[~tail]
    if held is not None:
        yield held


def session_recommendations(
    pipeline: Any | None,
    model_version: int,
    rows: duckdb.DuckDBPyRelation,
    batch_rows: int = BATCH_ROWS,
) -> pa.RecordBatchReader:
    """Recommendations for every session of `rows` (int_sessions_category_featurized, the
    live cut) by the deployed category model, with its name and version; empty without a
    model. The rows are read in session order about `batch_rows` at a time (never splitting a
    session), with every category of `rows` as a candidate: the same result whatever the batch
    size."""
    if pipeline is None:
        return stream([], SESSION_RECOMMENDATION_SCHEMA)
    live = rows.filter(f"history_cut = '{LIVE_CUT}'").project(
        ", ".join(quote_identifier(c) for c in RECOMMENDATION_INPUT_COLUMNS)
    )
    seen = [
        str(c)
        for (c,) in live.filter("category is not null").project("category").distinct().fetchall()
    ]

    def recommended() -> Iterator[pd.DataFrame]:
        for frame in _whole_sessions(read_batches(live.order("session_id"), batch_rows)):
            recs = recommend(frame, pipeline, seen=seen)
            keys = frame.drop_duplicates("session_id").set_index("session_id")
            yield recs.assign(
                model_name=MODEL,
                model_version=int(model_version),
                sessionization_key=keys["sessionization_key"]
                .reindex(recs["session_id"])
                .to_numpy(),
                features_built_at=keys["built_at"].reindex(recs["session_id"]).to_numpy(),
            ).astype(SESSION_RECOMMENDATION_COLUMNS)

    return stream(recommended(), SESSION_RECOMMENDATION_SCHEMA)


# --- offline evaluation ----------------------------------------------------------------------


def _hits(ranked: list[list[str]], targets: list[set[str]], k: int) -> int:
    return sum(bool(set(r[:k]) & t) for r, t in zip(ranked, targets, strict=True))


def _ranked(scores: np.ndarray, categories: list[str], k: int) -> list[list[str]]:
    names = np.asarray(categories, dtype=object)
    return [list(names[row]) for row in top_k(scores, categories, k)]


EVALUATION_LINE_COLUMNS = [
    "transaction_id",
    "session_id",
    "category",
    "transaction_time",
    *CATEGORY_FEATURES.columns,
]


def evaluation_inputs(
    features: duckdb.DuckDBPyRelation, lines: duckdb.DuckDBPyRelation
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, set[str]]]:
    """What `evaluate` reads, selected in DuckDB: the rows of `features`
    (int_sessions_category_featurized) of sessions with an order line, the order lines' columns
    it uses, and the categories seen per history cut over every row of `features`."""
    lines = lines.project(", ".join(quote_identifier(c) for c in EVALUATION_LINE_COLUMNS))
    bought = lines.filter("session_id is not null").project("session_id").distinct()
    rows = features.join(bought, "session_id", how="semi").order("history_cut, session_id")
    seen: dict[str, set[str]] = {}
    for cut, category in (
        features.filter("category is not null").project("history_cut, category").distinct()
    ).fetchall():
        seen.setdefault(str(cut), set()).add(str(category))
    return rows.df(), lines.df(), seen


def evaluate(
    rows: pd.DataFrame,
    lines: pd.DataFrame,
    customer_views: pd.DataFrame,
    forest: ForestParams,
    max_training_rows: int,
    model_version: int,
    seen: dict[str, set[str]] | None = None,
) -> pd.DataFrame:
    """Hit rate at 1 and 3 of each method (see METHODS) on a time hold-out.

    rows: int_sessions_category_featurized, every history cut (each evaluated on its own, with
    its own test sessions and baselines). lines: order lines (session_id, category,
    transaction_time and the category model's inputs). customer_views: per session with a
    purchase, the customer's product views per category up to the session's last event before
    checkout (session_id, category, views). The sessions evaluated are those with a purchased
    category and history rows; the latest HOLDOUT_SHARE of them by recommendation time are the
    test set. The category model is retrained on the order lines before the cut-off only, and
    popularity is counted on those lines, so nothing after the cut-off is seen. A test session
    is a hit at k when any category it bought is among the top k. The candidates are the
    model's classes and the categories `seen` per cut (default: those of `rows`).
    """
    parts = [
        _evaluate_cut(
            cut,
            rows[rows["history_cut"] == cut],
            lines,
            customer_views[customer_views["history_cut"] == cut],
            forest,
            max_training_rows,
            model_version,
            None if seen is None else seen.get(cut, set()),
        )
        for cut in (LIVE_CUT, BROWSING_CUT)
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return _empty(EVALUATION_COLUMNS)
    return pd.concat(parts, ignore_index=True).astype(EVALUATION_COLUMNS)


def _evaluate_cut(
    cut: str,
    rows: pd.DataFrame,
    lines: pd.DataFrame,
    customer_views: pd.DataFrame,
    forest: ForestParams,
    max_training_rows: int,
    model_version: int,
    seen_in_cut: set[str] | None,
) -> pd.DataFrame:
    """`evaluate` for the rows of one history cut."""
    targets = (
        lines.dropna(subset=["session_id", "category"])
        .groupby("session_id")["category"]
        .agg(lambda s: set(s.astype(str)))
    )
    context = rows.drop_duplicates("session_id")
    context = context[context["session_id"].isin(targets.index)]
    if len(context) < MIN_TEST_SESSIONS / HOLDOUT_SHARE:
        return _empty(EVALUATION_COLUMNS)
    context = context.sort_values(["last_event_time", "session_id"], kind="stable")
    n_test = int(np.ceil(len(context) * HOLDOUT_SHARE))
    test = context.iloc[-n_test:].sort_values("session_id", kind="stable").reset_index(drop=True)
    cutoff = pd.Timestamp(test["last_event_time"].min())
    train_lines = lines[pd.to_datetime(lines["transaction_time"]) < cutoff].dropna(
        subset=["category"]
    )
    train_lines = train_lines.sort_values("transaction_id", kind="stable")
    if len(train_lines) < MIN_TRAINING_LINES or train_lines["category"].nunique() < 2:
        return _empty(EVALUATION_COLUMNS)
    if len(train_lines) > max_training_rows:
        train_lines = train_lines.sample(max_training_rows, random_state=forest.seed)
    pipe = forest_pipeline(CATEGORY_FEATURES, forest)
    pipe.fit(CATEGORY_FEATURES.matrix(train_lines), train_lines["category"].astype(str))

    popularity = train_lines["category"].astype(str).value_counts()
    classes = [str(c) for c in pipe.classes_]
    if seen_in_cut is None:
        seen_in_cut = set(rows["category"].dropna().astype(str))
    seen = seen_in_cut | set(customer_views["category"].astype(str))
    categories = classes + sorted(seen - set(classes))
    sessions = pd.Index(test["session_id"])
    test_rows = rows[rows["session_id"].isin(sessions)]
    popular = np.tile(
        popularity.reindex(categories).fillna(0).to_numpy(float) / popularity.sum(),
        (len(sessions), 1),
    )
    model = np.zeros((len(sessions), len(categories)))
    model[:, : len(classes)] = model_probabilities(pipe, test)
    hist = test_rows.dropna(subset=["category"])
    history = _counts(hist, sessions, categories, "views_so_far") + CART_WEIGHT * _counts(
        hist, sessions, categories, "carts_so_far"
    )
    cv = customer_views[customer_views["session_id"].isin(sessions)]
    viewed = _counts(cv, sessions, categories, "views")
    # Ties between equally viewed categories (and customers with no views) go by popularity.
    scores = {
        "most_popular": popular,
        "customer_most_viewed": viewed + popular,
        "category_model": model,
        "session_history": blend(popular, history),
        "recommender": blend(model, history),
    }
    wanted = [targets[s] for s in sessions]
    out = []
    for method, matrix in scores.items():
        ranked = _ranked(matrix, categories, 3)
        for k in (1, 3):
            hits = _hits(ranked, wanted, k)
            out.append(
                {
                    "method": method,
                    "description": METHODS[method],
                    "is_baseline": method in BASELINES,
                    "k": k,
                    "hit_rate": hits / len(sessions),
                    "hits": hits,
                    "sessions": len(sessions),
                }
            )
    frame = pd.DataFrame(out).assign(history_cut=cut)
    best = frame[frame["is_baseline"]].groupby("k")["hit_rate"].max()
    frame["best_baseline_hit_rate"] = frame["k"].map(best)
    frame["cutoff_time"] = cutoff.to_pydatetime().replace(tzinfo=None)
    frame["training_lines"] = len(train_lines)
    frame["model_name"] = MODEL
    frame["model_version"] = int(model_version)
    return frame[list(EVALUATION_COLUMNS)].astype(EVALUATION_COLUMNS)


CUSTOMER_VIEWS_SQL = """
select s.history_cut, s.session_id, e.category, count(*) as views
from {sessions} as s
join {events} as e
    on e.customer_id = s.customer_id
    and e.event_time <= s.last_event_time
where e.event_type = 'product_view' and e.category is not null
group by s.history_cut, s.session_id, e.category
"""


def customer_views(
    con: duckdb.DuckDBPyConnection, events: duckdb.DuckDBPyRelation, sessions: pd.DataFrame
) -> pd.DataFrame:
    """The customer's product views per category up to each session's last event so far, per
    history cut (the customer_most_viewed baseline), computed in DuckDB over `events`
    (int_events_sessionized)."""
    con.register(
        "_recommend_sessions",
        sessions[["history_cut", "session_id", "customer_id", "last_event_time"]],
    )
    try:
        result = events.query(
            "_recommend_events",
            CUSTOMER_VIEWS_SQL.format(sessions="_recommend_sessions", events="_recommend_events"),
        )
        assert result is not None  # a select always gives a relation
        return result.df()
    finally:
        con.unregister("_recommend_sessions")


def deployed(training: pd.DataFrame) -> tuple[Any | None, int]:
    """The category model of `training` (ml.category_training rows), verified, and its version;
    (None, 0) when the build could not train one."""
    from shoplens.ml.artifacts import pipelines

    rows = training[training["model_name"] == MODEL]
    if rows.empty:
        return None, 0
    return pipelines(rows)[MODEL], int(rows["version"].iloc[0])
