import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mnemodyn_hf.evaluation import bootstrap_ci, primary_metric
from mnemodyn_hf.evaluation.statistics import (
    cluster_bootstrap_ci,
    holm,
    mean_over_groups,
    paired_comparison,
    paired_permutation_p,
    per_group,
    sign_flip_p,
)


def test_auc_matches_scikit_learn_with_ties_and_pearson_is_numpy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(labels + rng.normal(size=200), 1)  # many ties
    name, auc = primary_metric("classification")
    assert name == "roc_auc" and auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    targets = rng.normal(size=50)
    name, r = primary_metric("regression")
    predictions = 2 * targets + rng.normal(size=50)
    assert r(targets, predictions) == pytest.approx(np.corrcoef(targets, predictions)[0, 1])


def test_the_bootstrap_resamples_subjects_and_the_interval_covers_the_estimate():
    rng = np.random.default_rng(1)
    labels = np.repeat(rng.integers(0, 2, 100), 3)  # 100 subjects x 3 rows with the subject's label
    groups = np.repeat([f"s{i}" for i in range(100)], 3)
    scores = labels + rng.normal(scale=1.5, size=300)
    _, auc = primary_metric("classification")
    low, high = bootstrap_ci(auc, labels, scores, groups, num=500)
    assert low < auc(labels, scores) < high
    # a subject-level bootstrap is wider than treating the 300 correlated rows as independent would be
    rows_low, rows_high = bootstrap_ci(auc, labels, scores, np.arange(300).astype(str), num=500)
    assert (high - low) > 0.5 * (rows_high - rows_low)


def test_paired_p_is_one_for_identical_methods_and_small_for_a_clearly_better_one():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 300)
    groups = np.arange(300).astype(str)
    good = labels + rng.normal(scale=0.5, size=300)
    noise = rng.normal(size=300)
    _, auc = primary_metric("classification")
    assert paired_comparison(auc, labels, good, good, groups, scale="rank", num=300)["p"] == 1.0
    better = paired_comparison(auc, labels, good, noise, groups, scale="rank", num=300)
    assert better["p"] < 0.01 and better["ci95"][0] > 0 and better["unit"] == "subject"


def _planted_site_offsets(seed: int, sites: int = 8, per_site: int = 60):
    """Scores whose only structure is a per-site offset that follows the site's label rate: no within-site signal."""
    rng = np.random.default_rng(seed)
    rates = np.linspace(0.15, 0.85, sites)
    labels = np.concatenate([rng.random(per_site) < rate for rate in rates]).astype(int)
    groups = np.repeat([f"site{g}" for g in range(sites)], per_site)
    scores = np.repeat(5 * (rates - 0.5), per_site) + rng.normal(size=sites * per_site)
    return labels, scores, groups


def test_a_planted_site_offset_inflates_the_pooled_auc_but_not_the_mean_over_sites():
    _, auc = primary_metric("classification")
    held, pooled_held, pooled = 0, 0, []
    for seed in range(40):
        labels, scores, groups = _planted_site_offsets(seed)
        pooled.append(auc(labels, scores))  # pooled over sites: the offsets pass for prediction
        values = per_group(auc, labels, scores, groups)
        mean, undefined = mean_over_groups(values)
        low, high = cluster_bootstrap_ci(list(values.values()), num=500, seed=seed)
        assert undefined == [] and low <= mean <= high and abs(mean - 0.5) < 0.1
        held += low <= 0.5 <= high
        if seed < 10:  # the subject bootstrap of the pooled AUC (the old interval) excludes chance
            subjects = np.arange(len(labels)).astype(str)
            pooled_held += bootstrap_ci(auc, labels, scores, subjects, num=200, seed=seed)[0] <= 0.5
    assert min(pooled) > 0.6 and np.mean(pooled) > 0.68  # measured 0.647 and 0.709
    assert held >= 32 and pooled_held == 0  # 8 groups: the percentile interval covers a bit under 95 % (37 of 40)


def test_groups_with_one_class_are_listed_and_left_out_of_the_mean():
    _, auc = primary_metric("classification")
    labels = np.array([0, 1, 0, 1, 1, 1, 0, 1])
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.6, 0.9, 0.1])
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    values = per_group(auc, labels, scores, groups)
    assert values["a"] == values["b"] == 1.0 and np.isnan(values["c"]) and values["d"] == 0.0
    assert mean_over_groups(values) == (pytest.approx(2 / 3), ["c"])


def test_the_sign_flip_test_rejects_at_its_nominal_rate_on_null_data():
    """1,000 nulls, 10 groups of 20 subjects, two methods with exchangeable scores: exact enumeration of the 1,024
    flips gives p-values in steps of 2/1,024, so the rate at alpha 0.05 is 50/1,024 = 0.049 in expectation."""
    _, auc = primary_metric("classification")
    rng = np.random.default_rng(3)
    rejections = 0
    for _ in range(1000):
        labels = rng.integers(0, 2, (10, 20))
        labels[:, :2] = [0, 1]  # every group holds both classes
        shared = labels + rng.normal(size=(10, 20))  # what both methods know about each subject
        a, b = shared + rng.normal(size=(2, 10, 20))
        d = [auc(labels[g], a[g]) - auc(labels[g], b[g]) for g in range(10)]
        rejections += sign_flip_p(d) <= 0.05
    assert 0.03 <= rejections / 1000 <= 0.07


def test_sign_flip_p_is_exact_for_few_groups_and_monte_carlo_beyond():
    assert sign_flip_p([0.1, 0.2, 0.3]) == pytest.approx(2 / 8)  # only all-plus and all-minus reach |0.2|
    assert sign_flip_p([0.0, 0.0]) == 1.0 and np.isnan(sign_flip_p([np.nan]))
    p = sign_flip_p(np.full(20, 0.1), num=999, seed=0)
    assert p == pytest.approx(1 / 1000, abs=2e-3)  # the identity counts: never 0


def test_a_known_large_difference_is_detected_with_and_without_groups():
    _, auc = primary_metric("classification")
    rng = np.random.default_rng(4)
    labels = np.tile([0, 1], 150)
    groups = np.repeat([f"site{g}" for g in range(10)], 30)
    good = labels + rng.normal(scale=0.7, size=300)
    noise = rng.normal(size=300)
    subjects = np.arange(300).astype(str)
    by_groups = paired_comparison(auc, labels, good, noise, subjects, groups, num=500)
    assert by_groups["unit"] == "group" and by_groups["num_units"] == 10
    assert by_groups["p"] == pytest.approx(2 / 1024) and by_groups["ci95"][0] > 0.2
    by_subjects = paired_comparison(auc, labels, good, noise, subjects, scale="rank", num=500)
    assert by_subjects["unit"] == "subject" and by_subjects["num_units"] == 300
    assert by_subjects["p"] < 0.01 and by_subjects["ci95"][0] > 0.2
    assert by_subjects["difference"] == pytest.approx(auc(labels, good) - auc(labels, noise))
    same = paired_comparison(auc, labels, good, good, subjects, num=50)
    assert same["p"] == 1.0 and same["difference"] == 0.0


def test_the_subject_permutation_test_is_not_fooled_by_a_difference_of_scale():
    """Two methods with the same information on different scales (probabilities squeezed near 0.5 vs spread): the
    swap test compares ranks, so equal AUCs give a large p."""
    _, auc = primary_metric("classification")
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 200)
    signal = labels + rng.normal(size=200)
    squeezed, spread = 0.5 + 0.01 * np.tanh(signal), 1 / (1 + np.exp(-4 * signal))
    subjects = np.arange(200).astype(str)
    assert auc(labels, squeezed) == pytest.approx(auc(labels, spread))
    assert paired_permutation_p(auc, labels, squeezed, spread, subjects, scale="rank", num=200) == 1.0


def test_holm_on_known_p_values():
    adjusted = holm([0.01, 0.04, 0.03, 0.005, None])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02]) and adjusted[4] is None
    assert holm([0.02, 0.9]) == pytest.approx([0.04, 0.9]) and holm([0.5, 0.9]) == [1.0, 1.0] and holm([]) == []
