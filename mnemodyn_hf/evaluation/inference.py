"""The statistics of one evaluation: per-method estimates with 95 % intervals at the unit that generalizes, and the
confirmatory paired comparisons of the model's read-outs, Holm-adjusted.

Units: out-of-fold predictions are pooled per subject when the label is constant within subjects (else each row is
a unit). Groups: when sites are held out (leave-site-out, external-sites, `evaluate_cohort(groups=COL)`) the
group of a unit is its site; subjects of a site share a fold model and a site offset, so the site is the unit that
generalizes and every interval and test is over sites. Without groups (folds by subject) they are over subjects.

Per method (`report["methods"][m]`):
    `value` (the metric on the pooled units), `folds` / `mean_over_folds`, `ci95`, `ci_unit` ("group" or
    "subject"), `ci_method`, `estimate` (the number `ci95` is an interval for: `mean_over_groups` with groups, else
    `value`), `role` ("primary" or "secondary"), `p_vs_model` (the paired test below against
    `mnemodyn_linear_probe`, unadjusted: descriptive), and with groups `per_group`, `mean_over_groups` and
    `undefined_groups` (groups where the metric is undefined, e.g. a site with one class: left out of the mean).

Comparisons (`report["comparisons"]`): every model read-out (`mnemodyn_*`) that was run against the strongest
baseline (the highest `estimate` among `fc_pearson`, `fc_tangent`, `pooled_input`; chosen on the same scores, which
makes the comparison conservative for the model) and against the random backbone read the same way, each
`{a, b, kind, primary, difference, ci95, p, p_holm, unit, num_units}`: a sign-flip test over groups or a paired
permutation over subjects (`statistics.paired_comparison`), Holm-adjusted over the whole list.
"""

from __future__ import annotations

import numpy as np

from .folds import constant_within_subjects
from .statistics import (
    COMPARABLE_SCALE,
    GROUP_CI_METHOD,
    SUBJECT_CI_METHOD,
    bootstrap_ci,
    cluster_bootstrap_ci,
    holm,
    mean_over_groups,
    paired_comparison,
    per_group,
    primary_metric,
)

#: The model read-out every `p_vs_model` is against.
REFERENCE_METHOD = "mnemodyn_linear_probe"
#: Training-free baselines a model read-out must beat (the strongest of those run).
COMPARISON_BASELINES = ("fc_pearson", "fc_tangent", "pooled_input")
#: Each model read-out and the random backbone read the same way (the control of what pretraining adds).
RANDOM_COUNTERPARTS = {
    "mnemodyn_linear_probe": "random_backbone",
    "mnemodyn_correlation_probe": "random_backbone_correlation",
    "mnemodyn_tangent_probe": "random_backbone_tangent",
    "mnemodyn_update_tangent": "random_backbone_update_tangent",
}


def subject_means(scores: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) row scores -> (U,) or (U, C): the mean of each subject's rows, `inverse` the subject index of
    each row (`np.unique(..., return_inverse=True)`)."""
    scores = np.asarray(scores, np.float64)
    counts = np.bincount(inverse)
    columns = scores.reshape(len(scores), -1)
    means = np.stack([np.bincount(inverse, weights=c) for c in columns.T], axis=-1) / counts[:, None]
    return means.reshape(len(counts), *scores.shape[1:])


def summarise(
    scores: dict[str, np.ndarray],
    y: np.ndarray,
    subjects: np.ndarray,
    fold_of_row: np.ndarray,
    groups: np.ndarray | None,
    task_type: str,
    *,
    num_bootstrap: int,
    seed: int,
    primary_method: str,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Pool per subject (when the label is subject-level), then every method's statistics and the comparisons (see
    the module docstring). `groups` (the site of each row) or None. Returns (report part, predictions)."""
    metric_name, metric = primary_metric(task_type)
    subjects = np.asarray(subjects).astype(str)
    subject_level = constant_within_subjects(subjects, y)
    if subject_level:
        units, index, inverse = np.unique(subjects, return_index=True, return_inverse=True)
        pooled = {m: subject_means(s, inverse) for m, s in scores.items()}
        unit_y, unit_fold, unit_id = y[index], fold_of_row[index], units
        unit_group = None if groups is None else np.asarray(groups).astype(str)[index]
    else:
        pooled, unit_y, unit_fold, unit_id = scores, y, fold_of_row, subjects
        unit_group = None if groups is None else np.asarray(groups).astype(str)
    single_group = unit_group is not None and len(set(unit_group)) < 2
    if single_group:  # one test site: no interval over sites exists, so the subjects are the unit
        unit_group = None
    options = {"num": num_bootstrap, "seed": seed, "scale": COMPARABLE_SCALE[metric_name]}

    def compare(a: str, b: str) -> dict:
        return paired_comparison(metric, unit_y, pooled[a], pooled[b], unit_id, unit_group, **options)

    results = {}
    for method, values in pooled.items():
        per_fold = {
            str(name): metric(unit_y[unit_fold == name], values[unit_fold == name]) for name in dict.fromkeys(unit_fold)
        }
        finite = [v for v in per_fold.values() if np.isfinite(v)]
        value = metric(unit_y, values)
        result = {"metric": metric_name, "value": value}
        if unit_group is not None:
            by_group = per_group(metric, unit_y, values, unit_group)
            mean, undefined = mean_over_groups(by_group)
            ci = cluster_bootstrap_ci(list(by_group.values()), num=num_bootstrap, seed=seed)
            result.update(per_group=by_group, mean_over_groups=mean, undefined_groups=undefined, estimate=mean)
            result.update(ci95=list(ci), ci_unit="group", ci_method=GROUP_CI_METHOD)
        else:
            ci = bootstrap_ci(metric, unit_y, values, unit_id, num=num_bootstrap, seed=seed)
            result.update(estimate=value, ci95=list(ci), ci_unit="subject", ci_method=SUBJECT_CI_METHOD)
        reference = REFERENCE_METHOD in pooled and method != REFERENCE_METHOD
        result.update(
            p_vs_model=compare(REFERENCE_METHOD, method)["p"] if reference else None,
            role="primary" if method == primary_method else "secondary",
            mean_over_folds=float(np.mean(finite)) if finite else None,
            folds=per_fold,
        )
        results[method] = result
    strongest, comparisons = comparison_list(results, primary_method)
    for comparison in comparisons:
        comparison.update(compare(comparison["a"], comparison["b"]))
    for comparison, adjusted in zip(comparisons, holm([c["p"] for c in comparisons])):
        comparison["p_holm"] = adjusted
    report = {
        "methods": results,
        "unit": "subject" if subject_level else "row (label varies within subjects)",
        "units": len(unit_y),
        "primary_method": primary_method,
        "inference": {
            "unit": "group" if unit_group is not None else "subject",
            "groups": None if unit_group is None else "site",
            "num_groups": None if unit_group is None else len(set(unit_group)),
            "ci_method": GROUP_CI_METHOD if unit_group is not None else SUBJECT_CI_METHOD,
            "test": (
                "sign-flip test of the mean per-group difference (exact up to 16 groups)"
                if unit_group is not None
                else "paired permutation: each subject's two scores swapped at random"
            ),
            "multiplicity": "Holm over `comparisons`; p_vs_model unadjusted",
        },
        "strongest_baseline": strongest,
        "comparisons": comparisons,
    }
    if single_group:
        report["inference"]["note"] = "one test group: intervals and tests over subjects, not groups"
    if unit_group is not None and task_type == "classification":
        classes = set(np.unique(unit_y).tolist())
        lacking = [str(g) for g in np.unique(unit_group) if set(unit_y[unit_group == g].tolist()) != classes]
        report["groups_lacking_a_class"] = lacking
    group = {} if unit_group is None else {"group": unit_group}
    predictions = {"unit": unit_id, "fold": unit_fold, **group, "label": unit_y, **pooled}
    return report, predictions


def comparison_list(results: dict[str, dict], primary_method: str) -> tuple[str | None, list[dict]]:
    """(the strongest baseline run, or None; the comparisons `{a, b, kind, primary}` to test), the primary
    method's first."""
    baselines = [m for m in COMPARISON_BASELINES if m in results and np.isfinite(results[m]["estimate"])]
    strongest = max(baselines, key=lambda m: results[m]["estimate"]) if baselines else None
    models = sorted((m for m in results if m.startswith("mnemodyn_")), key=lambda m: (m != primary_method, m))
    comparisons = []
    for model in models:
        if strongest is not None:
            comparisons.append({"a": model, "b": strongest, "kind": "strongest_baseline"})
        if RANDOM_COUNTERPARTS.get(model) in results:
            comparisons.append({"a": model, "b": RANDOM_COUNTERPARTS[model], "kind": "random_backbone"})
    return strongest, [c | {"primary": c["a"] == primary_method} for c in comparisons]


__all__ = [
    "COMPARISON_BASELINES",
    "RANDOM_COUNTERPARTS",
    "REFERENCE_METHOD",
    "comparison_list",
    "subject_means",
    "summarise",
]
