"""Metrics of downstream predictions: classification (accuracy, macro-F1, ROC-AUC) and regression (MSE, MAE, R^2,
Pearson r), and their `compute_metrics` for `transformers.Trainer`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from transformers import EvalPrediction


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and ROC-AUC (binary, or macro one-vs-rest) from (N,) labels and (N, C) logits."""
    labels = np.asarray(labels).astype(int).ravel()
    logits = np.asarray(logits, dtype=np.float64)
    predicted = logits.argmax(axis=1)
    classes = np.arange(logits.shape[1])
    f1 = []
    for c in classes:
        true_positive = np.sum((predicted == c) & (labels == c))
        precision_denominator, recall_denominator = np.sum(predicted == c), np.sum(labels == c)
        denominator = precision_denominator + recall_denominator
        f1.append(0.0 if denominator == 0 else 2 * true_positive / denominator)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    scored = classes[1:] if len(classes) == 2 else classes
    aucs = [roc_auc(labels == c, probabilities[:, c]) for c in scored]
    aucs = [a for a in aucs if not np.isnan(a)]
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "macro_f1": float(np.mean(f1)),
        "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
    }


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney probability (ties count one half); NaN with one class."""
    from scipy.stats import rankdata

    positive = np.asarray(positive).astype(bool)
    n_positive, n_negative = positive.sum(), (~positive).sum()
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))  # average ranks over ties
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """MSE, MAE, R^2 and Pearson r, averaged over targets, from (N,) or (N, K) arrays."""
    targets = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(len(predictions), -1)
    error = predictions - targets
    total = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1 - (error**2).sum(axis=0) / np.where(total > 0, total, np.nan)
    centred_t, centred_p = targets - targets.mean(axis=0), predictions - predictions.mean(axis=0)
    scale = np.sqrt((centred_t**2).sum(axis=0) * (centred_p**2).sum(axis=0))
    pearson = (centred_t * centred_p).sum(axis=0) / np.where(scale > 0, scale, np.nan)
    return {
        "mse": float(np.mean(error**2)),
        "mae": float(np.mean(np.abs(error))),
        "r2": _finite_mean(r2),
        "pearson_r": _finite_mean(pearson),  # NaN when the predictions are constant (an undefined correlation)
    }


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


def metrics_for_trainer(
    task: str, target_mean: Sequence[float] | float = 0.0, target_std: Sequence[float] | float = 1.0
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `compute_metrics` for `transformers.Trainer`. For `task="regression"` with targets z-scored by the
    training split's `target_mean` / `target_std`, predictions and targets are mapped back first, so MSE and MAE
    are in the original units."""
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        outputs = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        if task == "classification":
            return classification_metrics(prediction.label_ids, outputs)
        mean, std = np.asarray(target_mean), np.asarray(target_std)
        labels = np.asarray(prediction.label_ids).reshape(len(outputs), -1)
        return regression_metrics(labels * std + mean, np.asarray(outputs).reshape(len(outputs), -1) * std + mean)

    return compute


__all__ = ["classification_metrics", "metrics_for_trainer", "regression_metrics", "roc_auc"]
