"""A label-permutation null for the linear read-outs: the whole cross-validation re-run with the labels permuted
(within sites when sites are held out, so each site keeps its label rate), the same folds, inner groups and
features.

Why: every fold model of a leave-site-out evaluation trains on most of the same sites, so the per-site scores of one
evaluation are correlated and a bootstrap over sites understates how far chance-level scores spread. Under labels
shuffled within sites, FC Pearson's site-bootstrap interval on abide_dev missed 0.5 in 2 of 10 shuffles (docs/
evaluation.md). Re-running the cross-validation under permuted labels gives the distribution of the same
estimate under no signal; `p_vs_chance` = (1 + #{null >= observed}) / (1 + num) is a calibrated one-sided test of
"above chance" (Ojala and Garriga 2010), and `null_ci95` the range shuffled labels reach on these folds.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from .designs import linear_design
from .folds import constant_within_subjects
from .inference import subject_means
from .linear_models import fit_predict
from .statistics import mean_over_groups, per_group, primary_metric


def permuted_labels(y: np.ndarray, subjects: np.ndarray, strata: np.ndarray | None, num: int, seed: int):
    """(num, N) label vectors: subjects' labels permuted among the subjects of each stratum (site), every row of a
    subject keeping its subject's label; rows are permuted directly when the label varies within subjects."""
    rng = np.random.default_rng(seed)
    strata = np.zeros(len(y), dtype=int) if strata is None else np.asarray(strata).astype(str)
    subject_level = constant_within_subjects(subjects, y)
    units = np.asarray(subjects).astype(str) if subject_level else np.arange(len(y)).astype(str)
    names, first, inverse = np.unique(units, return_index=True, return_inverse=True)
    unit_y, unit_stratum = y[first], strata[first]
    out = np.empty((num, len(y)), dtype=y.dtype)
    for index in range(num):
        shuffled = unit_y.copy()
        for stratum in np.unique(unit_stratum):
            members = np.flatnonzero(unit_stratum == stratum)
            shuffled[members] = unit_y[rng.permutation(members)]
        out[index] = shuffled[inverse]
    return out


def estimate(scores, y, subjects, groups, task_type: str) -> float:
    """The report's `estimate` of out-of-fold scores: per-subject means when the label is subject-level, then the
    mean over groups of the metric (groups given) or the pooled metric."""
    _, metric = primary_metric(task_type)
    subjects = np.asarray(subjects).astype(str)
    if constant_within_subjects(subjects, y):
        _, index, inverse = np.unique(subjects, return_index=True, return_inverse=True)
        scores, y = subject_means(scores, inverse), y[index]
        groups = None if groups is None else np.asarray(groups)[index]
    if groups is None:
        return float(metric(y, scores))
    return mean_over_groups(per_group(metric, y, scores, groups))[0]


def permutation_null(
    method: str,
    folds,
    inner_groups: dict,
    features: dict,
    bold: list[np.ndarray],
    confounds: np.ndarray | None,
    labels: np.ndarray,
    scored: np.ndarray,
    subjects: np.ndarray,
    groups: np.ndarray | None,
    task_type: str,
    observed: float,
    seed: int,
) -> dict:
    """Re-run `method`'s linear read-out under each row of `labels` ((num, N) permuted label vectors) on the same
    folds and inner groups; `scored` marks the rows that are tested (`groups`, `subjects` are of those rows).

    Returns:
        `{"num", "p_vs_chance", "null_ci95", "null_mean", "strata"}` for the estimate `observed`.
    """
    num = len(labels)
    null_scores = None
    for fold in tqdm(folds, desc=f"Label permutations ({method}, {num})", leave=False):
        x_train, x_test = linear_design(method, fold, features, bold, confounds)
        for index, permuted in enumerate(labels):
            predicted = fit_predict(x_train, permuted[fold.train], inner_groups[fold.name], x_test, task_type, seed)
            if task_type == "classification" and predicted.ndim == 2 and predicted.shape[1] == 2:
                predicted = predicted[:, 1]
            if null_scores is None:
                null_scores = np.full((num, len(scored), *predicted.shape[1:]), np.nan)
            null_scores[index, fold.test] = predicted
    null = np.array(
        [estimate(s[scored], permuted[scored], subjects, groups, task_type) for s, permuted in zip(null_scores, labels)]
    )
    null = null[np.isfinite(null)]
    return {
        "num": int(len(null)),
        "p_vs_chance": float((1 + np.sum(null >= observed)) / (1 + len(null))),
        "null_ci95": [float(np.percentile(null, 2.5)), float(np.percentile(null, 97.5))],
        "null_mean": float(np.mean(null)),
    }


__all__ = ["estimate", "permutation_null", "permuted_labels"]
