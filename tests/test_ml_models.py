"""The ml package on small synthetic frames: leakage, baselines, thresholds, naming, category."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ml_frames import customer_frame, order_line_frame, session_frame
from shoplens.config import PROJECT_ROOT
from shoplens.ml import evaluation as ev
from shoplens.ml import intent, segments
from shoplens.ml.category import CategoryConfig, train_category_choice
from shoplens.ml.features import ForestParams, split_labels

FAST = ForestParams(n_estimators=25, n_jobs=1)
RULES = pd.read_csv(PROJECT_ROOT / "seeds" / "segment_naming_rules.csv")


@pytest.fixture(scope="module")
def intent_result() -> intent.IntentResult:
    cfg = intent.IntentConfig(forest=FAST, max_training_rows=1_500, importance_rows=500)
    return intent.train_purchase_intent(session_frame(), cfg)


def test_leakage_is_detected_in_the_replication_only(intent_result: intent.IntentResult) -> None:
    assert sorted(intent_result.leaky_features) == ["checkouts", "revenue", "units_purchased"]
    early = [r for r in intent_result.leakage if r["feature_set"] == "early_intent"]
    assert len(early) == len(intent.EARLY_FEATURES.columns)
    assert not any(r["leaks"] for r in early)
    assert max(r["univariate_auc"] for r in early) < 0.8


def test_replication_scores_high_and_drops_without_the_leaky_features(
    intent_result: intent.IntentResult,
) -> None:
    leaky = intent_result.fit(intent.REPLICATION)
    honest = intent_result.fit(intent.REPLICATION_NO_LEAK)
    assert leaky.test_metric("accuracy") > 0.98
    assert leaky.test_metric("roc_auc") > 0.99
    assert honest.test_metric("roc_auc") < leaky.test_metric("roc_auc") - 0.15
    assert not set(intent_result.leaky_features) & set(honest.features.columns)


def test_baselines_are_the_majority_class(intent_result: intent.IntentResult) -> None:
    frame = session_frame().sort_values("session_id").reset_index(drop=True)
    labels = intent.intent_splits(
        frame, intent.EVAL_STRATIFIED, intent_result.fit(intent.STRATIFIED).split_params
    )
    y_test = frame.loc[labels == "test", "purchase_made"].to_numpy()
    rows = {
        r["metric"]: r for r in intent_result.fit(intent.STRATIFIED).metrics if r["split"] == "test"
    }
    assert rows["accuracy"]["baseline_value"] == pytest.approx(1 - y_test.mean())
    assert rows["recall"]["baseline_value"] == 0.0
    assert rows["roc_auc"]["baseline_value"] == pytest.approx(0.5)
    assert rows["pr_auc"]["baseline_value"] == pytest.approx(y_test.mean())
    assert rows["accuracy"]["n_rows"] == len(y_test)
    assert set(rows) == set(ev.BINARY_METRICS)


def test_deployed_model_beats_baseline_on_the_time_holdout(
    intent_result: intent.IntentResult,
) -> None:
    fit = intent_result.fit(intent.DEPLOYED)
    assert fit.evaluation == intent.EVAL_TIME
    rows = {r["metric"]: r for r in fit.metrics if r["split"] == "test"}
    for metric in ("f1", "roc_auc", "pr_auc", "brier"):
        assert rows[metric]["beats_baseline"], metric
    assert fit.training_rows == 1_500
    # Curves, confusion matrix and both kinds of importances are there.
    assert {r["curve"] for r in fit.curves} == {"roc", "pr"}
    assert sum(r["count"] for r in fit.confusion) == rows["accuracy"]["n_rows"]
    kinds = {(r["kind"], r["rank"]) for r in fit.importances}
    assert ("impurity", 1) in kinds and ("permutation", 1) in kinds


def test_time_holdout_tests_on_the_latest_sessions() -> None:
    frame = session_frame().sort_values("session_id").reset_index(drop=True)
    labels = intent.intent_splits(
        frame,
        intent.EVAL_TIME,
        {
            "test_size": 0.25,
            "validation_size": 0.2,
            "holdout_weeks": 4,
            "max_training_rows": 10_000,
            "seed": 1,
        },
    )
    test_start = frame.loc[labels == "test", "session_start"]
    assert test_start.min() >= frame["session_start"].max() - pd.Timedelta(weeks=4)
    assert frame.loc[labels != "test", "session_start"].max() < test_start.min()


def test_threshold_is_chosen_on_validation_not_test() -> None:
    y_val = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    p_val = np.array([0.1, 0.2, 0.3, 0.35, 0.8, 0.4, 0.9, 0.05])
    # Best F1 on these rows: predict positive from 0.35 up (one false positive at 0.4).
    assert ev.choose_threshold(y_val, p_val) == pytest.approx(0.35)
    assert ev.choose_threshold(np.zeros(4), np.linspace(0, 1, 4)) == 0.5


def test_splits_are_deterministic_stratified_and_capped() -> None:
    y = pd.Series(np.r_[np.zeros(900), np.ones(100)].astype(int))
    a = split_labels(y, test_size=0.25, validation_size=0.2, max_training_rows=300, seed=3)
    b = split_labels(y, test_size=0.25, validation_size=0.2, max_training_rows=300, seed=3)
    pd.testing.assert_series_equal(a, b)
    counts = a.value_counts()
    assert counts["test"] == 250 and counts["validation"] == 150 and counts["train"] == 300
    assert counts["not_sampled"] == 300
    assert y[a == "test"].mean() == pytest.approx(0.1)
    c = split_labels(y, test_size=0.25, validation_size=0.2, max_training_rows=300, seed=4)
    assert not a.equals(c)


def test_same_data_and_seed_give_the_same_metrics() -> None:
    cfg = intent.IntentConfig(forest=FAST, max_training_rows=800, importance_rows=300)
    frame = session_frame(1_200, seed=5)
    one = intent.fit_binary(frame, intent.EARLY_FEATURES, "m", intent.EVAL_TIME, cfg)
    two = intent.fit_binary(
        frame.sample(frac=1, random_state=9).sort_values("session_id").reset_index(drop=True),
        intent.EARLY_FEATURES,
        "m",
        intent.EVAL_TIME,
        cfg,
    )
    assert one.metrics == two.metrics
    assert one.threshold == two.threshold


def test_segments_recover_personas_and_names_follow_the_rule() -> None:
    frame = customer_frame()
    result = segments.train_segments(frame, RULES, seed=42, max_training_rows=10_000)
    assert result.k == 5
    assert result.k_selection["chosen"].sum() == 1
    assert set(result.k_selection["k"]) == set(range(2, 9))
    assigned = result.assign(frame)
    assert adjusted_rand_score(frame["persona"], assigned["segment_name"]) > 0.95
    named = pd.crosstab(frame["persona"], assigned["segment_name"]).idxmax(axis=1).to_dict()
    assert named == {
        "browser": "Browsers",
        "cart_abandoner": "Cart Abandoners",
        "one_click_buyer": "One-Click Buyers",
        "explorer": "Explorers",
        "ordinary": "Regulars",
    }
    prof = segments.profiles(assigned, frame)
    assert prof["customers"].sum() == len(frame)
    assert prof["share"].sum() == pytest.approx(1.0)


def test_naming_rule_is_stable_under_shuffled_cluster_ids() -> None:
    frame = customer_frame(per_persona=60, seed=3)
    result = segments.train_segments(frame, RULES, seed=1, max_training_rows=10_000)
    centroids = pd.DataFrame(
        result.pipeline.named_steps["kmeans"].cluster_centers_, columns=segments.SEGMENT_FEATURES
    )
    names = segments.name_clusters(centroids, RULES)
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm = rng.permutation(len(centroids))
        shuffled = centroids.iloc[perm].reset_index(drop=True)
        renamed = segments.name_clusters(shuffled, RULES)
        assert {new: renamed[new] for new in range(len(perm))} == {
            new: names[old] for new, old in enumerate(perm)
        }


def test_naming_fallback_numbers_extra_clusters() -> None:
    centroids = pd.DataFrame(
        np.arange(6 * len(segments.SEGMENT_FEATURES), dtype=float).reshape(6, -1) % 7,
        columns=segments.SEGMENT_FEATURES,
    )
    names = segments.name_clusters(centroids, RULES)
    assert sorted(names.values()) == [
        "Browsers",
        "Cart Abandoners",
        "Explorers",
        "One-Click Buyers",
        "Regulars",
        "Regulars 2",
    ]


def test_category_model_beats_baseline_when_there_is_signal() -> None:
    fit = train_category_choice(order_line_frame(), CategoryConfig(forest=FAST))
    assert fit is not None and fit.beats_baseline
    overall = {r["metric"]: r for r in fit.metrics if r["class_label"] is None}
    assert overall["accuracy"]["value"] > 0.7
    assert overall["accuracy"]["baseline_value"] < 0.35
    per_class = [r for r in fit.metrics if r["class_label"] is not None]
    assert {r["class_label"] for r in per_class} == {"Books", "Electronics", "Fashion", "Toys"}
    assert sum(r["n_rows"] for r in per_class if r["metric"] == "f1") == 400


def test_category_model_says_plainly_when_it_does_not_beat_baseline() -> None:
    fit = train_category_choice(order_line_frame(signal=False), CategoryConfig(forest=FAST))
    assert fit is not None and not fit.beats_baseline
    assert fit.summary()["beats_baseline"] is False
    assert train_category_choice(order_line_frame(10), CategoryConfig(forest=FAST)) is None


def test_time_holdout_falls_back_to_the_latest_quarter_on_short_histories() -> None:
    start = pd.Series(pd.date_range("2019-10-01", "2019-10-31", periods=1_000))
    mask = intent.time_holdout_mask(start, holdout_weeks=4)
    assert mask.sum() == 250
    assert start[mask].min() >= start.quantile(0.75)
    long = pd.Series(pd.date_range("2026-01-01", "2026-12-31", periods=1_000))
    assert long[intent.time_holdout_mask(long, 4)].min() >= long.max() - pd.Timedelta(weeks=4)


def _label_indexed_splits(y: pd.Series, test_mask: pd.Series | None, cap: int, seed: int):
    """split_labels as first written, on a labelled object Series (the reference the
    position-based form must reproduce draw for draw)."""
    from sklearn.model_selection import train_test_split

    labels = pd.Series("train", index=y.index, dtype=object)
    if test_mask is None:
        _, test_idx = train_test_split(y.index, test_size=0.25, random_state=seed, stratify=y)
        labels[test_idx] = "test"
    else:
        labels[test_mask.to_numpy()] = "test"
    rest = y[labels == "train"]
    _, val_idx = train_test_split(rest.index, test_size=0.2, random_state=seed + 1, stratify=rest)
    labels[val_idx] = "validation"
    rng = np.random.default_rng(seed + 2)
    for part in ("train", "validation", "test"):
        idx = labels.index[labels == part]
        if len(idx) > cap:
            drop = rng.choice(len(idx), size=len(idx) - cap, replace=False)
            labels[idx[drop]] = "not_sampled"
    return labels


@pytest.mark.parametrize("time_based", [False, True])
def test_split_labels_match_the_label_indexed_form(time_based: bool) -> None:
    rng = np.random.default_rng(11)
    # A shuffled, non-range index: labels must follow the rows, not the index values.
    y = pd.Series(rng.integers(0, 2, 5_000), index=rng.permutation(5_000) * 3 + 7)
    mask = pd.Series(rng.random(5_000) < 0.3, index=y.index) if time_based else None
    for cap, seed in ((400, 1), (10_000, 2), (1_000, 3)):
        expected = _label_indexed_splits(y, mask, cap, seed)
        got = split_labels(
            y, test_mask=mask, test_size=0.25, validation_size=0.2, max_training_rows=cap, seed=seed
        )
        pd.testing.assert_series_equal(got, expected)


def test_training_on_the_sampled_rows_equals_training_on_every_row() -> None:
    cfg = intent.IntentConfig(forest=FAST, max_training_rows=150, importance_rows=100)
    frame = session_frame(2_000, seed=7).sort_values("session_id").reset_index(drop=True)
    whole = intent.train_purchase_intent(frame, cfg)
    splits = intent.evaluation_splits(frame, cfg)
    positions = intent.sampled_rows(splits)
    # Most rows are left out, so the test says something about reading only the sampled ones.
    assert len(positions) < len(frame) / 2
    part = intent.train_purchase_intent(
        frame.iloc[positions], cfg, {ev: s.iloc[positions] for ev, s in splits.items()}
    )
    assert [f.model_name for f in part.fits] == [f.model_name for f in whole.fits]
    for a, b in zip(whole.fits, part.fits, strict=True):
        assert (a.metrics, a.importances, a.curves) == (b.metrics, b.importances, b.curves)
        assert a.threshold == b.threshold and a.training_rows == b.training_rows
    assert whole.leakage == part.leakage and whole.leaky_features == part.leaky_features
