"""Scores with uncertainty, at the unit that generalizes.

* Without groups (folds by subject): the task's metric on pooled out-of-fold predictions with a 95 % interval from
  a bootstrap over subjects (all rows of a drawn subject enter together, so rows of one subject never count as
  independent evidence): `bootstrap_ci`.
* With groups (sites held out): subjects of a site share a fold model and a site offset, so the unit that
  generalizes is the site. The metric is computed within each group (`per_group`), the estimate is the mean over
  the groups where it is defined (`mean_over_groups`; a group with one class has no AUC and is left out, never
  pooled), and its 95 % interval comes from a cluster bootstrap that resamples whole groups with replacement
  (`cluster_bootstrap_ci`). With few groups (6-10 sites) a percentile bootstrap is crude: it tends to be too narrow.
* Paired comparisons of two methods on the same units (`paired_comparison`): with groups, a sign-flip test of the
  mean per-group difference (exact over all 2^G flips up to 16 groups, else Monte Carlo); without groups, a paired
  permutation test that swaps the two methods' scores within each subject. `holm` adjusts a family of p-values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .metrics import roc_auc

#: Bootstrap resamples behind every interval and p-value.
NUM_BOOTSTRAP = 2000
#: Sign-flip tests enumerate all 2^G flips up to this many groups (65,536), and draw `MONTE_CARLO_FLIPS` beyond.
EXACT_SIGN_FLIP_GROUPS = 16
MONTE_CARLO_FLIPS = 10_000
#: How each metric's scores are put on one scale before a permutation swaps them between two methods (the metric
#: is invariant to it): ranks for ROC-AUC (any monotone map), z-scores for Pearson r (any affine map).
COMPARABLE_SCALE = {"roc_auc": "rank", "pearson_r": "zscore"}
GROUP_CI_METHOD = (
    "cluster bootstrap over groups (whole groups resampled with replacement) of the mean of per-group values"
)
SUBJECT_CI_METHOD = "bootstrap over subjects of the metric on pooled out-of-fold scores"


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
    """metric(a) - metric(b) on the same rows with its 95 % interval over paired subject resamples (both methods
    scored on each resample): `{"difference", "ci95_low", "ci95_high"}`. For a test, use `paired_comparison`."""
    targets, scores_a, scores_b = np.asarray(targets), np.asarray(scores_a), np.asarray(scores_b)
    differences = []
    for rows in _subject_resamples(groups, num, seed):
        differences.append(metric(targets[rows], scores_a[rows]) - metric(targets[rows], scores_b[rows]))
    differences = np.asarray(differences)
    differences = differences[np.isfinite(differences)]
    observed = float(metric(targets, scores_a) - metric(targets, scores_b))
    if len(differences) == 0:
        return {"difference": observed, "ci95_low": float("nan"), "ci95_high": float("nan")}
    return {
        "difference": observed,
        "ci95_low": float(np.percentile(differences, 2.5)),
        "ci95_high": float(np.percentile(differences, 97.5)),
    }


def per_group(metric, targets, scores, groups) -> dict[str, float]:
    """`metric` within each group (sorted by name); NaN where it is undefined (e.g. AUC of a group with one class)."""
    targets, scores, groups = np.asarray(targets), np.asarray(scores), np.asarray(groups).astype(str)
    return {str(g): float(metric(targets[groups == g], scores[groups == g])) for g in np.unique(groups)}


def mean_over_groups(values: Mapping[str, float]) -> tuple[float, list[str]]:
    """(mean of the defined per-group values, the groups left out because their value is undefined)."""
    defined = [v for v in values.values() if np.isfinite(v)]
    undefined = [g for g, v in values.items() if not np.isfinite(v)]
    return (float(np.mean(defined)) if defined else float("nan")), undefined


def cluster_bootstrap_ci(group_values, *, num: int = NUM_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean over groups, resampling whole groups with replacement: each group keeps
    its own value (its metric on all of its rows); undefined (NaN) groups are left out first. With few groups the
    percentile interval is crude (too narrow)."""
    values = np.asarray([v for v in group_values if np.isfinite(v)], np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    means = values[np.random.default_rng(seed).integers(0, len(values), (num, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def sign_flip_p(differences, *, num: int = MONTE_CARLO_FLIPS, seed: int = 0) -> float:
    """Two-sided sign-flip p-value of mean(differences) = 0 (one difference per group, NaN dropped): the fraction of
    sign flips whose |mean| reaches the observed |mean|, the identity counted. Exact (all 2^G flips) up to
    `EXACT_SIGN_FLIP_GROUPS` groups, else `num` random flips, p = (1 + hits) / (1 + num)."""
    d = np.asarray([v for v in differences if np.isfinite(v)], np.float64)
    if len(d) == 0:
        return float("nan")
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))
    if len(d) <= EXACT_SIGN_FLIP_GROUPS:
        signs = ((np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1) * 2.0 - 1.0
        return float(np.mean(np.abs(signs @ d) / len(d) >= observed - tolerance))
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], (num, len(d)))
    hits = np.sum(np.abs(signs @ d) / len(d) >= observed - tolerance)
    return float((1 + hits) / (1 + num))


def comparable_scores(scores, scale: str) -> np.ndarray:
    """Scores mapped per column to ranks in (0, 1) (`scale="rank"`) or z-scores (`"zscore"`), or left as they are
    (`"none"`: scores already on one scale, such as two predictors' error sums)."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, np.float64)
    if scale == "none":
        return scores
    if scale == "rank":
        return (rankdata(scores, axis=0) - 0.5) / len(scores)
    if scale == "zscore":
        spread = scores.std(axis=0)
        return (scores - scores.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    raise ValueError(f"scale must be 'rank', 'zscore' or 'none', got {scale!r}.")


def paired_permutation_p(
    metric, targets, scores_a, scores_b, units, *, scale: str = "zscore", num: int = NUM_BOOTSTRAP, seed: int = 0
) -> float:
    """Two-sided paired permutation p-value of metric(a) - metric(b) = 0: each unit (subject: all of its rows) has
    its a and b scores swapped with probability 1/2, `num` times; p = (1 + hits) / (1 + num). Both methods' scores
    are first put on one scale (`comparable_scores`; the metric must be invariant to it) so that a swap exchanges
    what the methods know about the unit, not their units of measurement."""
    targets = np.asarray(targets)
    a, b = comparable_scores(scores_a, scale), comparable_scores(scores_b, scale)
    observed = metric(targets, a) - metric(targets, b)
    if not np.isfinite(observed):
        return float("nan")
    _, inverse = np.unique(np.asarray(units).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    tolerance = 1e-12 * max(1.0, abs(observed))
    hits = 0
    for _ in range(num):
        swap = (rng.random(inverse.max() + 1) < 0.5)[inverse]
        swap = swap[:, None] if a.ndim == 2 else swap
        difference = metric(targets, np.where(swap, b, a)) - metric(targets, np.where(swap, a, b))
        hits += bool(abs(difference) >= abs(observed) - tolerance)
    return float((1 + hits) / (1 + num))


def paired_comparison(
    metric,
    targets,
    scores_a,
    scores_b,
    units,
    groups=None,
    *,
    scale: str = "zscore",
    num: int = NUM_BOOTSTRAP,
    seed: int = 0,
) -> dict:
    """metric(a) - metric(b) on the same units, its 95 % interval and a calibrated two-sided p-value.

    With `groups`: the difference is the mean over groups of d_g = metric_g(a) - metric_g(b) (groups where either is
    undefined left out), its interval a cluster bootstrap of that mean, p a sign-flip test (`sign_flip_p`). Without:
    the pooled difference, a subject-bootstrap interval (`paired_difference`) and a paired permutation test
    (`paired_permutation_p`) over `units`.

    Returns:
        `{"difference", "ci95": [low, high], "p", "unit": "group"|"subject", "num_units"}`.
    """
    targets, scores_a, scores_b = np.asarray(targets), np.asarray(scores_a), np.asarray(scores_b)
    if groups is not None:
        by_a, by_b = per_group(metric, targets, scores_a, groups), per_group(metric, targets, scores_b, groups)
        d = np.array([by_a[g] - by_b[g] for g in by_a])
        d = d[np.isfinite(d)]
        return {
            "difference": float(d.mean()) if len(d) else float("nan"),
            "ci95": list(cluster_bootstrap_ci(d, num=num, seed=seed)),
            "p": sign_flip_p(d, seed=seed),
            "unit": "group",
            "num_units": int(len(d)),
        }
    bootstrap = paired_difference(metric, targets, scores_a, scores_b, units, num=num, seed=seed)
    return {
        "difference": bootstrap["difference"],
        "ci95": [bootstrap["ci95_low"], bootstrap["ci95_high"]],
        "p": paired_permutation_p(metric, targets, scores_a, scores_b, units, scale=scale, num=num, seed=seed),
        "unit": "subject",
        "num_units": int(len(np.unique(np.asarray(units).astype(str)))),
    }


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (family-wise error); None / NaN stay None and are not
    counted in the family."""
    p = np.array([np.nan if v is None else v for v in p_values], np.float64)
    order = sorted(np.flatnonzero(np.isfinite(p)), key=lambda i: (p[i], i))
    adjusted: list[float | None] = [None] * len(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[index]))
        adjusted[index] = float(running)
    return adjusted


__all__ = [
    "COMPARABLE_SCALE",
    "EXACT_SIGN_FLIP_GROUPS",
    "GROUP_CI_METHOD",
    "MONTE_CARLO_FLIPS",
    "NUM_BOOTSTRAP",
    "SUBJECT_CI_METHOD",
    "bootstrap_ci",
    "cluster_bootstrap_ci",
    "comparable_scores",
    "holm",
    "mean_over_groups",
    "paired_comparison",
    "paired_difference",
    "paired_permutation_p",
    "per_group",
    "primary_metric",
    "sign_flip_p",
]
