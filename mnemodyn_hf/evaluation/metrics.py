"""Downstream evaluation: metrics for `Trainer`, pooled embeddings, and the functional-connectivity baseline.

Every model number should be reported next to the FC baseline on the same splits: controlled studies find that
fMRI foundation models often do not beat a linear model on Fisher-z correlation matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
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
    aucs = [_roc_auc(labels == c, probabilities[:, c]) for c in scored]
    aucs = [a for a in aucs if not np.isnan(a)]
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "macro_f1": float(np.mean(f1)),
        "roc_auc": float(np.mean(aucs)) if aucs else float("nan"),
    }


def _roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney probability (ties count one half); NaN with one class."""
    positive = positive.astype(bool)
    n_positive, n_negative = positive.sum(), (~positive).sum()
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over ties
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
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
        "r2": float(np.nanmean(r2)),
        "pearson_r": float(np.nanmean(pearson)),
    }


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


def functional_connectivity(series: Sequence[np.ndarray]) -> np.ndarray:
    """Fisher-z Pearson correlations between ROIs, upper triangle: (T, R) series -> (N, R (R - 1) / 2).

    Constant ROIs (e.g. a zero subcortex) get correlation 0.
    """
    features = []
    for bold in series:
        bold = np.asarray(bold, dtype=np.float64)
        centred = bold - bold.mean(axis=0)
        norms = np.sqrt((centred**2).sum(axis=0))
        safe = np.where(norms > 0, norms, np.inf)
        correlation = (centred.T @ centred) / np.outer(safe, safe)
        upper = correlation[np.triu_indices(bold.shape[1], k=1)]
        features.append(np.arctanh(np.clip(upper, -0.999999, 0.999999)))
    return np.stack(features)


def fc_baseline(train_series, train_labels, test_series, task: str, seed: int = 0) -> np.ndarray:
    """Fit the FC baseline on the training split only; return test logits (classification) or predictions.

    Classification: standardised FC -> L2 logistic regression (C chosen by 5-fold CV on the training split).
    Regression: standardised FC -> ridge regression (alpha chosen by efficient leave-one-out on the training split).
    """
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = functional_connectivity(train_series), functional_connectivity(test_series)
    if task == "classification":
        model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=[1e-3, 1e-2, 1e-1, 1], max_iter=2000, random_state=seed))
        model.fit(x_train, np.asarray(train_labels).astype(int))
        scores = model.decision_function(x_test)
        if scores.ndim == 1:  # binary: the score is the log-odds of class 1, i.e. logits (0, score)
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        return scores
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    model.fit(x_train, np.asarray(train_labels, dtype=np.float64))
    return model.predict(x_test)


@torch.no_grad()
def embed(model, series: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """Pooled embeddings (N, 2R) of a [`MnemoDynModel`] for a list of (T, R) series (any lengths), in eval mode."""
    from .data.collator import MnemoDynDataCollator

    was_training = model.training
    model.eval()
    collate = MnemoDynDataCollator(input_key="input_values")
    device = next(model.parameters()).device
    pooled = []
    for start in range(0, len(series), batch_size):
        batch = collate([{"input_values": s} for s in series[start : start + batch_size]])
        out = model(batch["input_values"].to(device), attention_mask=batch["attention_mask"].to(device))
        pooled.append(out.pooler_output.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(pooled)


__all__ = [
    "classification_metrics",
    "embed",
    "fc_baseline",
    "functional_connectivity",
    "metrics_for_trainer",
    "regression_metrics",
]
