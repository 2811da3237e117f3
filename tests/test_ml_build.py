"""The dbt-facing entry points (shoplens.ml.build) on small frames: empty inputs, versions."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from ml_frames import session_frame
from shoplens.ml import artifacts, build, intent, registry, reuse

TINY = build.Settings(seed=1, n_estimators=10, max_training_rows=1_000, n_jobs=1)


def _intent_rows(frame: pd.DataFrame) -> duckdb.DuckDBPyRelation:
    """build.intent_rows over the early-intent and study halves of `frame` (an in-memory
    DuckDB holds them, as the warehouse would)."""
    early_cols = ["session_id", "session_start", "purchase_made", *intent.EARLY_FEATURES.columns]
    study_cols = ["session_id", *intent.SESSION_STUDY_FEATURES.columns]
    con = duckdb.connect()
    early, sessions = con.from_df(frame[early_cols]), con.from_df(frame[study_cols])
    return build.intent_rows(early, sessions, intent.EARLY_FEATURES.columns)


def test_untrainable_data_gives_empty_typed_tables() -> None:
    rows = _intent_rows(session_frame(200).assign(purchase_made=False))
    training = build.intent_training(rows, intent.EARLY_FEATURES.columns, TINY)
    assert training.empty and list(training.columns) == artifacts.TRAINING_COLUMNS
    metrics = artifacts.unpack(training, "metrics")
    assert metrics.empty and list(metrics.columns) == list(artifacts.ARTIFACT_COLUMNS["metrics"])
    predictions = build.session_predictions(training, rows).read_pandas()
    assert predictions.empty and "probability" in predictions.columns
    assert build.registry_table([training], set()).empty


def test_training_rows_unpack_and_score_with_their_split() -> None:
    frame = session_frame(1_500, seed=2)
    frame.loc[frame.index[:5], "events_so_far"] = 0  # opened with a checkout: not modelled
    rows = _intent_rows(frame)
    training = build.intent_training(rows, intent.EARLY_FEATURES.columns, TINY)
    assert set(training["model_name"]) == {
        intent.DEPLOYED,
        intent.STRATIFIED,
        intent.REPLICATION,
        intent.REPLICATION_NO_LEAK,
    }
    metrics = artifacts.unpack(training, "metrics")
    assert len(metrics) == 4 * 2 * 7  # models x (validation, test) x metrics
    leakage = artifacts.unpack(training, "leakage")
    assert set(leakage.loc[leakage["leaks"], "feature"]) == {
        "checkouts",
        "units_purchased",
        "revenue",
    }
    preds = build.session_predictions(training, rows).read_pandas()
    assert len(preds) == 4 * (frame["events_so_far"] > 0).sum()
    # Scoring in batches (here of 97 sessions, the last one short) gives the same rows.
    batched = build.session_predictions(training, rows, batch_rows=97).read_pandas()
    order = ["model_name", "session_id"]
    pd.testing.assert_frame_equal(
        batched.sort_values(order, ignore_index=True), preds.sort_values(order, ignore_index=True)
    )
    deployed = preds[preds["model_name"] == intent.DEPLOYED]
    params = json.loads(training.set_index("model_name").loc[intent.DEPLOYED, "split_params"])
    assert (deployed["split"] == "train").sum() == min(params["max_training_rows"], 1_000)
    # The stored threshold is the one predictions use.
    threshold = training.set_index("model_name").loc[intent.DEPLOYED, "threshold"]
    assert (deployed["predicted"] == (deployed["probability"] >= threshold)).all()


def test_registry_versions_continue_per_model() -> None:
    training = build.intent_training(
        _intent_rows(session_frame(800, seed=4)), intent.EARLY_FEATURES.columns, TINY
    )
    state = reuse.TrainingState({}, {intent.DEPLOYED: 4})
    stamped = state.stamp(training, "f" * 64)
    versions = dict(zip(stamped["model_name"], stamped["version"], strict=True))
    assert versions[intent.DEPLOYED] == 5 and versions[intent.STRATIFIED] == 1
    assert (stamped["training_fingerprint"] == "f" * 64).all()
    # The registry appends the versions it lacks, and only those.
    table = build.registry_table([stamped], {(intent.DEPLOYED, 5)})
    assert intent.DEPLOYED not in set(table["model_name"]) and len(table) == len(stamped) - 1
    assert list(table.columns) == [*registry.REGISTRY_COLUMNS, "training_fingerprint"]


def test_models_are_reused_only_on_the_same_fingerprint() -> None:
    state = reuse.TrainingState({intent.DEPLOYED: "a", intent.STRATIFIED: "a"}, {})
    assert state.reusable("a", force=False)
    assert not state.reusable("a", force=True)
    assert not state.reusable("b", force=False)
    assert not reuse.TrainingState({intent.DEPLOYED: "a", intent.STRATIFIED: None}, {}).reusable(
        "a", force=False
    )
    assert not reuse.TrainingState().reusable("a", force=False)


def _rendered(**changes: str) -> dict[str, str]:
    """The ml_settings config as dbt renders it (every value a string)."""
    config = {"seed": "7", "n_estimators": "50", "max_training_rows": "1000", "n_jobs": "2"}
    return {**config, **changes}


def test_settings_from_rendered_vars() -> None:
    settings = build.Settings.from_config(_rendered())
    assert settings == build.Settings(seed=7, n_estimators=50, max_training_rows=1000, n_jobs=2)
    assert build.Settings.from_config(_rendered(force_retrain="True")).force_retrain
    assert not build.Settings.from_config(_rendered(force_retrain="false")).force_retrain
    with pytest.raises(ValueError):
        build.Settings.from_config(_rendered(force_retrain="maybe"))
    with pytest.raises(ValueError):
        build.Settings.from_config(_rendered(seed="seven"))
    with pytest.raises(ValueError, match="ml_settings config is missing"):
        build.Settings.from_config(None)
