"""Feature sets, the Random Forest pipeline, row caps and deterministic splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

MISSING = "(missing)"


@dataclass(frozen=True)
class FeatureSet:
    """Input columns of a model: numeric ones pass through, categorical ones are encoded."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def without(self, dropped: set[str] | list[str]) -> FeatureSet:
        """The same set minus some columns."""
        return FeatureSet(
            tuple(c for c in self.numeric if c not in dropped),
            tuple(c for c in self.categorical if c not in dropped),
        )

    def matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model input: numeric columns as float, categoricals as strings (missing marked)."""
        out = pd.DataFrame(index=frame.index)
        for col in self.numeric:
            out[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        for col in self.categorical:
            out[col] = frame[col].astype(object).where(frame[col].notna(), MISSING).astype(str)
        return out


@dataclass(frozen=True)
class ForestParams:
    """Random Forest controls (dbt vars ml_seed, ml_n_estimators, ml_n_jobs)."""

    seed: int = 42
    n_estimators: int = 100
    n_jobs: int = 2
    # Depth and leaf size keep the stored pipelines small (a few MB) and the forests honest.
    max_depth: int | None = 10
    min_samples_leaf: int = 10
    class_weight: str | None = None

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "n_estimators": self.n_estimators,
            "n_jobs": self.n_jobs,
            "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf,
            "class_weight": self.class_weight,
        }


def forest_pipeline(features: FeatureSet, params: ForestParams) -> Pipeline:
    """Encoder for the categoricals (unknown and missing -> -1) + a Random Forest."""
    transformers: list = [("num", "passthrough", list(features.numeric))]
    if features.categorical:
        transformers.append(
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                ),
                list(features.categorical),
            )
        )
    prep = ColumnTransformer(transformers, verbose_feature_names_out=False)
    forest = RandomForestClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf,
        class_weight=params.class_weight,
        random_state=params.seed,
        n_jobs=params.n_jobs,
    )
    return Pipeline([("prep", prep), ("forest", forest)])


def _stratify(y: pd.Series) -> pd.Series | None:
    """Stratify on y only when every class has at least two rows."""
    counts = y.value_counts()
    return y if len(counts) > 1 and counts.min() >= 2 else None


def split_labels(
    y: pd.Series,
    *,
    test_mask: pd.Series | None = None,
    test_size: float = 0.25,
    validation_size: float = 0.2,
    max_training_rows: int | None = None,
    seed: int = 42,
) -> pd.Series:
    """Deterministic split labels per row: train, validation, test or not_sampled.

    The test part is `test_mask` when given (a time-based hold-out) or a stratified random
    `test_size` share. `validation_size` of the rest is a stratified validation part (where
    thresholds are chosen). Each part (train, validation, test) is then capped at
    `max_training_rows` rows by a seeded random sample; the rows left out are labelled
    not_sampled (big warehouses train and evaluate on samples). Same input and seed, same labels.
    """
    # Positions and small integer codes instead of labelled object Series: the same rows, the
    # same seeded draws in the same order, so the same labels (a test holds them equal to the
    # label-indexed form), at a fraction of the cost on a million rows.
    codes = np.zeros(len(y), dtype=np.int8)
    positions = np.arange(len(y))
    if test_mask is None:
        if len(y) < 4:
            return _labelled(codes, y.index)
        _, test_pos = train_test_split(
            positions, test_size=test_size, random_state=seed, stratify=_stratify(y)
        )
        codes[test_pos] = _TEST
    else:
        codes[np.asarray(test_mask, dtype=bool)] = _TEST
    rest_pos = np.flatnonzero(codes == _TRAIN)
    if validation_size > 0 and len(rest_pos) >= 4:
        _, val_pos = train_test_split(
            rest_pos,
            test_size=validation_size,
            random_state=seed + 1,
            stratify=_stratify(y.iloc[rest_pos]),
        )
        codes[val_pos] = _VALIDATION
    if max_training_rows is not None:
        rng = np.random.default_rng(seed + 2)
        for part in (_TRAIN, _VALIDATION, _TEST):
            idx = np.flatnonzero(codes == part)
            if len(idx) > max_training_rows:
                drop = rng.choice(len(idx), size=len(idx) - max_training_rows, replace=False)
                codes[idx[drop]] = _NOT_SAMPLED
    return _labelled(codes, y.index)


# Codes of split_labels' working array, and the label of each.
_TRAIN, _VALIDATION, _TEST, _NOT_SAMPLED = 0, 1, 2, 3
_LABELS = np.array(["train", "validation", "test", "not_sampled"], dtype=object)


def _labelled(codes: np.ndarray, index: pd.Index) -> pd.Series:
    return pd.Series(_LABELS[codes], index=index, dtype=object)
