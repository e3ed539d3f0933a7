import numpy as np
import pytest

from mnemodyn_hf.evaluation import EvaluationSettings
from mnemodyn_hf.evaluation.harness import evaluate_backbone
from mnemodyn_hf.evaluation.permutation import estimate, permuted_labels


def test_permuted_labels_keep_each_sites_labels_and_each_subjects_rows_together():
    rng = np.random.default_rng(0)
    subjects = np.repeat([f"s{i}" for i in range(40)], 2)  # two runs per subject
    sites = np.repeat(["A", "B", "C", "D"], 20)
    y = np.repeat(rng.integers(0, 2, 40), 2)
    labels = permuted_labels(y, subjects, sites, 50, seed=0)
    assert labels.shape == (50, 80)
    for permuted in labels:
        for site in "ABCD":
            assert sorted(permuted[sites == site]) == sorted(y[sites == site])  # each site keeps its label rate
        assert np.array_equal(permuted[0::2], permuted[1::2])  # a subject's runs share its label
    assert len({tuple(row) for row in labels}) > 40 and not all(np.array_equal(row, y) for row in labels)
    run_level = permuted_labels(np.arange(80) % 3, subjects, None, 3, seed=0)  # varies within subjects: rows
    assert sorted(run_level[0]) == sorted(np.arange(80) % 3)


def test_the_estimate_is_the_reports(abide_small, backbone_200):
    """The null's statistic is the report's `estimate` (the mean over sites of per-site AUCs of subject means)."""
    settings = EvaluationSettings(methods=("fc_pearson",), num_bootstrap=50)
    report, predictions = evaluate_backbone(
        abide_small, label="dx", task_type="classification", backbone=backbone_200, split="leave-site-out",
        settings=settings,
    )  # fmt: skip
    sites = dict(zip(abide_small["subject"], abide_small["site"]))
    groups = np.array([sites[unit] for unit in predictions["unit"]])
    value = estimate(predictions["fc_pearson"], predictions["label"], predictions["unit"], groups, "classification")
    assert value == pytest.approx(report["methods"]["fc_pearson"]["estimate"])
    assert estimate(predictions["fc_pearson"], predictions["label"], predictions["unit"], None, "classification") == (
        pytest.approx(report["methods"]["fc_pearson"]["value"])
    )
