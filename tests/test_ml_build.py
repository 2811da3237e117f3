"""The dbt-facing entry points (shoplens.ml.build) on small frames: empty inputs, versions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ml_frames import session_frame
from shoplens.ml import artifacts, build, intent, registry, reuse

TINY = build.Settings(seed=1, n_estimators=10, max_training_rows=1_000, n_jobs=1)


def _split_frames(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    early_cols = ["session_id", "session_start", "purchase_made", *intent.EARLY_FEATURES.columns]
    study_cols = ["session_id", *intent.SESSION_STUDY_FEATURES.columns]
    return frame[early_cols], frame[study_cols]


def test_untrainable_data_gives_empty_typed_tables() -> None:
    frame = session_frame(200).assign(purchase_made=False)
    early, sessions = _split_frames(frame)
    training = build.intent_training(early, sessions, intent.EARLY_FEATURES.columns, TINY)
    assert training.empty and list(training.columns) == artifacts.TRAINING_COLUMNS
    metrics = artifacts.unpack(training, "metrics")
    assert metrics.empty and list(metrics.columns) == list(artifacts.ARTIFACT_COLUMNS["metrics"])
    predictions = build.session_predictions(training, early, sessions)
    assert predictions.empty and "probability" in predictions.columns
    assert build.registry_table([training], set()).empty


def test_training_rows_unpack_and_score_with_their_split() -> None:
    frame = session_frame(1_500, seed=2)
    frame.loc[frame.index[:5], "events_so_far"] = 0  # opened with a checkout: not modelled
    early, sessions = _split_frames(frame)
    training = build.intent_training(early, sessions, intent.EARLY_FEATURES.columns, TINY)
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
    preds = build.session_predictions(training, early, sessions)
    assert len(preds) == 4 * (frame["events_so_far"] > 0).sum()
    deployed = preds[preds["model_name"] == intent.DEPLOYED]
    params = json.loads(training.set_index("model_name").loc[intent.DEPLOYED, "split_params"])
    assert (deployed["split"] == "train").sum() == min(params["max_training_rows"], 1_000)
    # The stored threshold is the one predictions use.
    threshold = training.set_index("model_name").loc[intent.DEPLOYED, "threshold"]
    assert (deployed["predicted"] == (deployed["probability"] >= threshold)).all()


def test_registry_versions_continue_per_model() -> None:
    frame = session_frame(800, seed=4)
    early, sessions = _split_frames(frame)
    training = build.intent_training(early, sessions, intent.EARLY_FEATURES.columns, TINY)
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


def test_settings_from_rendered_vars() -> None:
    settings = build.Settings.from_config("7", "50", "1000", "2")
    assert settings == build.Settings(seed=7, n_estimators=50, max_training_rows=1000, n_jobs=2)
    assert build.Settings.from_config("7", "50", "1000", "2", "True").force_retrain
    assert not build.Settings.from_config("7", "50", "1000", "2", "false").force_retrain
    with pytest.raises(ValueError):
        build.Settings.from_config("7", "50", "1000", "2", "maybe")
    with pytest.raises(ValueError):
        build.Settings.from_config("seven", "50", "1000", "2")
