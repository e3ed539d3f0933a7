import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mnemodyn_hf.evaluation import bootstrap_ci, paired_bootstrap_p, primary_metric


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
    assert paired_bootstrap_p(auc, labels, good, good, groups, num=300) == 1.0
    assert paired_bootstrap_p(auc, labels, good, noise, groups, num=300) < 0.01
