"""Scores with uncertainty: the task's metric on pooled out-of-fold predictions, a 95 % confidence interval by a
bootstrap over subjects, and a paired bootstrap p-value for the difference between two methods.

Resampling is by subject (all rows of a drawn subject enter together), so rows of one subject never count as
independent evidence. The p-value is two-sided: twice the smaller tail of the bootstrap distribution of
`metric(a) - metric(b)` around 0 (capped at 1), computed on the same resamples for both methods.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .metrics import roc_auc

#: Bootstrap resamples behind every interval and p-value.
NUM_BOOTSTRAP = 2000


def primary_metric(task: str) -> tuple[str, Callable[[np.ndarray, np.ndarray], float]]:
    """(name, fn(targets, scores)) of a task's headline metric: ROC-AUC (binary: scores are P(class 1); several
    classes: (N, C) probabilities, macro one-vs-rest) or Pearson r."""
    if task == "classification":
        return "roc_auc", _auc
    if task == "regression":
        return "pearson_r", _pearson
    raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")


def _auc(targets: np.ndarray, scores: np.ndarray) -> float:
    targets = np.asarray(targets).astype(int)
    scores = np.asarray(scores, np.float64)
    if scores.ndim == 1:
        return roc_auc(targets == 1, scores)
    values = [roc_auc(targets == c, scores[:, c]) for c in range(scores.shape[1])]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def _pearson(targets: np.ndarray, predictions: np.ndarray) -> float:
    t = np.asarray(targets, np.float64) - np.mean(targets)
    p = np.asarray(predictions, np.float64) - np.mean(predictions)
    scale = np.sqrt((t**2).sum() * (p**2).sum())
    return float((t * p).sum() / scale) if scale > 0 else float("nan")


def _subject_resamples(groups: Sequence[str], num: int, seed: int) -> list[np.ndarray]:
    """Row indices of `num` bootstrap resamples of the subjects."""
    groups = np.asarray(groups)
    subjects, inverse = np.unique(groups, return_inverse=True)
    rows = [np.flatnonzero(inverse == index) for index in range(len(subjects))]
    rng = np.random.default_rng(seed)
    return [np.concatenate([rows[i] for i in rng.integers(0, len(subjects), len(subjects))]) for _ in range(num)]


def bootstrap_ci(metric, targets, scores, groups, *, num: int = NUM_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of `metric(targets, scores)` over subject resamples (NaN resamples skipped)."""
    targets, scores = np.asarray(targets), np.asarray(scores)
    values = np.array([metric(targets[rows], scores[rows]) for rows in _subject_resamples(groups, num, seed)])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def paired_difference(
    metric, targets, scores_a, scores_b, groups, *, num: int = NUM_BOOTSTRAP, seed: int = 0
) -> dict[str, float]:
    """metric(a) - metric(b) on the same rows, with its 95 % interval and two-sided p-value over paired subject
    resamples: `{"difference", "ci95_low", "ci95_high", "p"}`."""
    targets, scores_a, scores_b = np.asarray(targets), np.asarray(scores_a), np.asarray(scores_b)
    differences = []
    for rows in _subject_resamples(groups, num, seed):
        differences.append(metric(targets[rows], scores_a[rows]) - metric(targets[rows], scores_b[rows]))
    differences = np.asarray(differences)
    differences = differences[np.isfinite(differences)]
    observed = float(metric(targets, scores_a) - metric(targets, scores_b))
    if len(differences) == 0:
        return {"difference": observed, "ci95_low": float("nan"), "ci95_high": float("nan"), "p": float("nan")}
    tail = min(np.mean(differences <= 0), np.mean(differences >= 0))
    return {
        "difference": observed,
        "ci95_low": float(np.percentile(differences, 2.5)),
        "ci95_high": float(np.percentile(differences, 97.5)),
        "p": float(min(1.0, 2 * tail)),
    }


def paired_bootstrap_p(
    metric, targets, scores_a, scores_b, groups, *, num: int = NUM_BOOTSTRAP, seed: int = 0
) -> float:
    """Two-sided bootstrap p-value of metric(a) - metric(b) != 0, both scored on the same subject resamples."""
    return paired_difference(metric, targets, scores_a, scores_b, groups, num=num, seed=seed)["p"]


__all__ = ["NUM_BOOTSTRAP", "bootstrap_ci", "paired_bootstrap_p", "paired_difference", "primary_metric"]
