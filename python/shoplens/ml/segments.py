"""Customer segments: K-Means on standardised behaviour features, named by a fixed rule.

k is chosen over 2..8 by silhouette (inertia and Davies-Bouldin are recorded per k). Names come
from the seed `reference.segment_naming_rules`: rules are applied in priority order; each rule
scores every still-unnamed cluster by the weighted sum of its centroid's rank (0 = lowest,
1 = highest among the clusters) on the rule's features and names the best one. Clusters left
over get the fallback name (the rule with no feature). Ranks and tie-breaks depend only on the
centroids, so the names do not depend on K-Means' arbitrary cluster ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

MODEL = "customer_segments"
PCA_MODEL = "customer_segments_pca"
# Per-customer behaviour rates (per session, so that the amount of history does not dominate the
# segments), defined in SQL in intermediate.int_customers_featurized and read under these names by
# shoplens.ml.reuse.customer_behaviour (SEGMENT_COLUMNS maps the SQL columns to them).
SEGMENT_FEATURES = [
    "views_per_session",
    "cart_session_rate",
    "abandoned_session_rate",
    "purchase_rate",
    "seconds_per_page",
    "pages_per_session",
]
# Shown in the profiles beside the clustering features.
PROFILE_EXTRAS = ["sessions", "avg_session_minutes"]
K_RANGE = range(2, 9)
SILHOUETTE_SAMPLE = 5_000
# k is chosen on a seeded sample of at most this many customers (7 K-Means fits per build).
SELECTION_SAMPLE = 20_000
N_INIT = 4


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.clip(x, 0, None))


def segment_pipeline(k: int, seed: int) -> Pipeline:
    """log1p (tames the long tails of counts and durations) + standardise + K-Means."""
    return Pipeline(
        [
            ("log1p", FunctionTransformer(_log1p, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
            ("kmeans", KMeans(n_clusters=k, n_init=N_INIT, random_state=seed)),
        ]
    )


def behaviour_matrix(frame: pd.DataFrame, features: list[str] = SEGMENT_FEATURES) -> pd.DataFrame:
    """The clustering input: the behaviour features as floats, missing rates as 0."""
    return frame[features].apply(pd.to_numeric, errors="coerce").astype("float64").fillna(0.0)


def select_k(X: pd.DataFrame, seed: int, k_range: range = K_RANGE) -> tuple[int, pd.DataFrame]:
    """Fit K-Means for each k on (a sample of) X; choose the highest silhouette.

    Returns (k, table per k)."""
    rows = []
    if len(X) > SELECTION_SAMPLE:
        X = X.sample(SELECTION_SAMPLE, random_state=seed)
    scaled = segment_pipeline(2, seed)[:-1].fit_transform(X)
    for k in k_range:
        if k >= len(X):
            break
        km = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(scaled)
        if len(np.unique(km.labels_)) < 2:
            continue
        rows.append(
            {
                "k": k,
                "inertia": float(km.inertia_),
                "silhouette": float(
                    silhouette_score(
                        scaled,
                        km.labels_,
                        sample_size=min(SILHOUETTE_SAMPLE, len(X)),
                        random_state=seed,
                    )
                ),
                "davies_bouldin": float(davies_bouldin_score(scaled, km.labels_)),
            }
        )
    table = pd.DataFrame(rows, columns=["k", "inertia", "silhouette", "davies_bouldin"])
    if table.empty:
        raise ValueError("too few distinct customers to cluster")
    best = int(table.loc[table["silhouette"].idxmax(), "k"])
    table["chosen"] = table["k"] == best
    return best, table


def name_clusters(centroids: pd.DataFrame, rules: pd.DataFrame) -> dict[int, str]:
    """Names for the clusters (index of `centroids` = cluster id) from the naming rules.

    `rules` has priority, segment_name, feature, weight; the rule whose feature is empty is the
    fallback. Repeated fallback names get a number (Regulars, Regulars 2, ...).
    """
    ranks = centroids.rank(method="average").sub(1).div(max(len(centroids) - 1, 1))
    rules = rules.assign(feature=rules["feature"].fillna("").astype(str))
    fallback_rows = rules[rules["feature"].str.strip() == ""]
    fallback = (
        str(fallback_rows.sort_values("priority")["segment_name"].iloc[0])
        if len(fallback_rows)
        else "Other"
    )
    # Ties between clusters break on the centroid values themselves, never on the cluster ids.
    order = sorted(centroids.index, key=lambda c: tuple(centroids.loc[c].round(12)))
    names: dict[int, str] = {}
    named = rules[rules["feature"].str.strip() != ""]
    for (_, name), group in named.groupby(["priority", "segment_name"], sort=True):
        free = [c for c in order if c not in names]
        if not free:
            break
        usable = group[group["feature"].isin(centroids.columns)]
        if usable.empty:
            continue
        scores = {
            c: float(
                sum(
                    w * ranks.loc[c, f]
                    for f, w in zip(usable["feature"], usable["weight"], strict=True)
                )
            )
            for c in free
        }
        best = max(free, key=lambda c: scores[c])  # first in `order` among equal scores
        names[best] = str(name)
    count = 0
    for c in order:
        if c not in names:
            count += 1
            names[c] = fallback if count == 1 else f"{fallback} {count}"
    return names


@dataclass
class SegmentResult:
    """The fitted segmentation and everything the segment tables need."""

    pipeline: Pipeline
    pca: Pipeline
    k: int
    k_selection: pd.DataFrame
    names: dict[int, str]
    training_rows: int
    features: list[str]

    def assign(self, frame: pd.DataFrame) -> pd.DataFrame:
        """customer_id, segment_id, segment_name, pc1, pc2 for every customer in `frame`."""
        X = behaviour_matrix(frame, self.features)
        cluster = self.pipeline.predict(X)
        # Segment ids follow the (unique) names in alphabetical order: stable across reruns.
        seg_id = {c: i for i, c in enumerate(sorted(self.names, key=self.names.__getitem__))}
        coords = self.pca.transform(X)
        return pd.DataFrame(
            {
                "customer_id": frame["customer_id"].to_numpy(),
                "segment_id": [seg_id[c] for c in cluster],
                "segment_name": [self.names[c] for c in cluster],
                "pc1": coords[:, 0],
                "pc2": coords[:, 1] if coords.shape[1] > 1 else 0.0,
            }
        )


def profiles(assigned: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per segment: size, share and the mean of each behaviour feature (and of the
    PROFILE_EXTRAS columns `frame` has)."""
    features = SEGMENT_FEATURES + [c for c in PROFILE_EXTRAS if c in frame.columns]
    data = assigned[["segment_id", "segment_name"]].join(
        behaviour_matrix(frame, features).reset_index(drop=True)
    )
    grouped = data.groupby(["segment_id", "segment_name"], sort=True)
    out = grouped[features].mean().add_prefix("mean_").reset_index()
    out.insert(2, "customers", grouped.size().to_numpy())
    out.insert(3, "share", out["customers"] / max(len(assigned), 1))
    return out


def train_segments(
    frame: pd.DataFrame, rules: pd.DataFrame, seed: int, max_training_rows: int
) -> SegmentResult:
    """Choose k, fit K-Means and a 2-D PCA on (a seeded sample of) the customers, name them."""
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    fit_frame = (
        frame.sample(max_training_rows, random_state=seed)
        if len(frame) > max_training_rows
        else frame
    )
    X = behaviour_matrix(fit_frame)
    k, table = select_k(X, seed)
    pipe = segment_pipeline(k, seed).fit(X)
    pca = Pipeline(
        [
            *segment_pipeline(k, seed).steps[:-1],
            ("pca", PCA(n_components=min(2, X.shape[1]), random_state=seed)),
        ]
    ).fit(X)
    centroids = pd.DataFrame(pipe.named_steps["kmeans"].cluster_centers_, columns=X.columns)
    return SegmentResult(
        pipeline=pipe,
        pca=pca,
        k=k,
        k_selection=table,
        names=name_clusters(centroids, rules),
        training_rows=len(X),
        features=list(SEGMENT_FEATURES),
    )
