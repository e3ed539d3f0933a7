"""The statistics of one evaluation (`inference.summarise`) on synthetic out-of-fold scores, and the names the
comparisons and the tasks' primary read-outs rely on."""

import numpy as np
import pytest

from mnemodyn_hf.evaluation.harness import DEFAULT_METHODS
from mnemodyn_hf.evaluation.inference import COMPARISON_BASELINES, RANDOM_COUNTERPARTS, comparison_list, summarise
from mnemodyn_hf.evaluation.report import summary_table
from mnemodyn_hf.evaluation.statistics import holm
from mnemodyn_hf.evaluation.tasks import TASKS


def _cohort(seed: int = 0):
    """Four sites of 20 subjects (site D scanned only class 0), one row per subject."""
    rng = np.random.default_rng(seed)
    sites = np.repeat(["A", "B", "C", "D"], 20)
    y = np.where(sites == "D", 0, np.tile([0, 1], 40))
    subjects = np.array([f"s{i}" for i in range(80)])
    scores = {
        "mnemodyn_tangent_probe": y + rng.normal(size=80),
        "random_backbone_tangent": rng.normal(size=80),
        "fc_pearson": 0.5 * y + rng.normal(size=80),
        "fc_tangent": rng.normal(size=80),
    }
    return scores, y, subjects, sites


def test_site_inference_lists_sites_lacking_a_class_and_leaves_them_out_of_the_mean():
    scores, y, subjects, sites = _cohort()
    report, predictions = summarise(
        scores, y, subjects, sites, sites, "classification", num_bootstrap=200, seed=0,
        primary_method="mnemodyn_tangent_probe",
    )  # fmt: skip
    assert report["groups_lacking_a_class"] == ["D"] and report["inference"]["num_groups"] == 4
    for result in report["methods"].values():
        assert result["undefined_groups"] == ["D"] and result["per_group"]["D"] != result["per_group"]["D"]  # NaN
        defined = [result["per_group"][site] for site in "ABC"]
        assert result["mean_over_groups"] == pytest.approx(np.mean(defined)) == result["estimate"]
        assert result["ci_unit"] == "group" and "cluster bootstrap over groups" in result["ci_method"]
        assert result["p_vs_model"] is None  # no linear probe run
    assert report["methods"]["mnemodyn_tangent_probe"]["role"] == "primary"
    assert report["methods"]["fc_pearson"]["role"] == "secondary"
    assert report["primary_method"] == "mnemodyn_tangent_probe"
    assert report["strongest_baseline"] == "fc_pearson"
    assert [(c["a"], c["b"], c["primary"]) for c in report["comparisons"]] == [
        ("mnemodyn_tangent_probe", "fc_pearson", True),
        ("mnemodyn_tangent_probe", "random_backbone_tangent", True),
    ]
    for comparison in report["comparisons"]:
        assert comparison["unit"] == "group" and comparison["num_units"] == 3  # D has no AUC
        assert comparison["p"] >= 0.25  # 3 sites: 2 of 8 flips at best
    assert [c["p_holm"] for c in report["comparisons"]] == holm([c["p"] for c in report["comparisons"]])
    assert list(predictions["unit"]) == sorted(subjects)
    text = summary_table(report | {"label": "dx", "split": "leave-site-out", "subjects": 80, "folds": [{}] * 4})
    assert "CIs and tests over sites" in text and "sites lacking a class (left out of site means): D" in text
    assert (
        "* mnemodyn_tangent_probe" in text and "comparisons (difference of site means, p Holm-adjusted over 2)" in text
    )


def test_without_groups_the_subjects_are_the_unit_and_the_test_is_a_permutation():
    scores, y, subjects, sites = _cohort(1)
    scores["mnemodyn_linear_probe"] = scores.pop("mnemodyn_tangent_probe")
    del scores["fc_tangent"]
    scores["fc_pearson"] = np.random.default_rng(2).normal(size=80)  # no signal: the probe is clearly better
    report, _ = summarise(
        scores, y, subjects, sites, None, "classification", num_bootstrap=200, seed=0,
        primary_method="mnemodyn_linear_probe",
    )  # fmt: skip
    assert report["inference"]["unit"] == "subject" and "groups_lacking_a_class" not in report
    result = report["methods"]["fc_pearson"]
    assert result["ci_unit"] == "subject" and result["estimate"] == result["value"] and "per_group" not in result
    assert 0 < result["p_vs_model"] <= 1
    assert [(c["a"], c["b"]) for c in report["comparisons"]] == [("mnemodyn_linear_probe", "fc_pearson")]
    comparison = report["comparisons"][0]
    assert comparison["unit"] == "subject" and comparison["num_units"] == 80 and comparison["p"] < 0.05
    text = summary_table(report | {"label": "dx", "split": "subject-5fold", "subjects": 80, "folds": [{}] * 5})
    assert "CIs and tests over subjects" in text and "value" in text.splitlines()[1]


def test_the_strongest_baseline_is_the_highest_estimate_among_those_run():
    results = {
        "fc_pearson": {"estimate": 0.60},
        "pooled_input": {"estimate": 0.66},
        "random_backbone": {"estimate": 0.70},  # not a baseline a read-out must beat
        "mnemodyn_linear_probe": {"estimate": 0.62},
        "mnemodyn_head": {"estimate": 0.61},
    }
    strongest, comparisons = comparison_list(results, "mnemodyn_head")
    assert strongest == "pooled_input"
    assert [(c["a"], c["b"], c["kind"]) for c in comparisons] == [
        ("mnemodyn_head", "pooled_input", "strongest_baseline"),
        ("mnemodyn_linear_probe", "pooled_input", "strongest_baseline"),
        ("mnemodyn_linear_probe", "random_backbone", "random_backbone"),
    ]
    assert comparison_list({"fc_pearson": {"estimate": 0.6}}, "mnemodyn_linear_probe") == ("fc_pearson", [])


def test_comparison_names_and_primary_read_outs_are_harness_methods():
    assert set(COMPARISON_BASELINES) | set(RANDOM_COUNTERPARTS) | set(RANDOM_COUNTERPARTS.values()) <= set(
        DEFAULT_METHODS
    )
    assert {spec.primary_method for spec in TASKS.values()} <= set(DEFAULT_METHODS)
    assert TASKS["abide-dx"].primary_method == "mnemodyn_tangent_probe"
