"""Motion handled as the field does it: mean framewise displacement regressed out of the features within each
training fold, and a motion control centered within sites (free of the site mean FD / site label rate confound)."""

import datasets
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mnemodyn_hf.evaluation import EvaluationSettings, evaluate_backbone, fit_predict, harness
from mnemodyn_hf.evaluation.connectivity import pearson_connectivity
from mnemodyn_hf.evaluation.harness import confound_matrix, regress_out
from mnemodyn_hf.evaluation.report import summary_table
from mnemodyn_hf.evaluation.tasks import TASKS, site_centered_control

FC_ONLY = EvaluationSettings(methods=("fc_pearson",), num_bootstrap=200)
REGRESS_FD = EvaluationSettings(methods=("fc_pearson",), num_bootstrap=200, regress_out=("func_mean_fd",))


@pytest.fixture(scope="module")
def abide_with_fd(abide_small):
    """The small ABIDE cohort without its 2 subjects lacking a motion estimate (both OHSU)."""
    return abide_small.filter(lambda fd: fd is not None and fd == fd, input_columns="func_mean_fd")


def _max_abs_correlation(x: np.ndarray, confound: np.ndarray) -> float:
    x = x - x.mean(axis=0)
    c = confound - confound.mean()
    spread = np.linalg.norm(x, axis=0) * np.linalg.norm(c)
    keep = spread > 1e-12 * max(spread.max(), 1.0)  # constant columns (the FC diagonal) have no correlation
    return float(np.max(np.abs(c @ x[:, keep]) / spread[keep]))


def test_regressing_fd_out_leaves_real_fc_uncorrelated_with_fd_on_the_training_rows(abide_with_fd):
    fc = pearson_connectivity(list(abide_with_fd.with_format("numpy")["bold"]))
    fd = np.asarray(abide_with_fd["func_mean_fd"], dtype=np.float64)
    train = np.asarray(abide_with_fd["site"]) != "SBL"
    assert _max_abs_correlation(fc[train], fd[train]) > 0.2  # real FC carries motion before
    x_train, x_test = regress_out(fc[train], fd[train, None], fc[~train], fd[~train, None])
    assert x_train.shape == fc[train].shape and x_test.shape == fc[~train].shape
    assert _max_abs_correlation(x_train, fd[train]) < 1e-8
    # the test rows get the training fit subtracted, not a fit of their own
    slope_free = regress_out(
        fc[train], fd[train, None], fc[~train], np.full((int((~train).sum()), 1), fd[train].mean())
    )
    assert np.allclose(slope_free[1], fc[~train])


def test_the_harness_regresses_fd_out_within_each_fold_and_reports_it(abide_with_fd, backbone_200, monkeypatch):
    fd = np.asarray(abide_with_fd["func_mean_fd"], dtype=np.float64)
    seen = []

    def recording(x_train, y_train, groups, x_test, task_type, seed):
        seen.append(x_train)
        return fit_predict(x_train, y_train, groups, x_test, task_type, seed)

    monkeypatch.setattr(harness, "fit_predict", recording)
    report, _ = evaluate_backbone(
        abide_with_fd,
        label="dx",
        task_type="classification",
        backbone=backbone_200,
        split="leave-site-out",
        settings=REGRESS_FD,
    )
    assert report["confounds_regressed"] == ["func_mean_fd"] and report["confounds_regressed_from"] == ["fc_pearson"]
    assert "regressed out of the features within each training fold: func_mean_fd" in summary_table(
        report | {"unit": "subject"}
    )
    sites = np.asarray(abide_with_fd["site"])
    assert len(seen) == 3
    for fold, x_train in zip(report["folds"], seen, strict=True):
        assert _max_abs_correlation(x_train, fd[sites != fold["name"]]) < 1e-8, fold["name"]
    assert 0 <= report["methods"]["fc_pearson"]["estimate"] <= 1


def test_a_planted_fd_link_is_removed_by_regressing_fd_out():
    """Label = FD above its median; the features are FD scaled plus noise. Without regression the read-out finds the
    label from FD; with FD regressed out (fitted on the training rows) only the noise is left: chance."""
    rng = np.random.default_rng(0)
    fd = rng.lognormal(-2.0, 0.5, size=600)
    x = np.column_stack([3.0 * fd + 0.01 * rng.normal(size=600), -2.0 * fd + 0.01 * rng.normal(size=600)])
    train, test = np.arange(400), np.arange(400, 600)
    y = (fd > np.median(fd[train])).astype(np.int64)
    groups = np.arange(400)

    def auc(x_train, x_test):
        return roc_auc_score(y[test], fit_predict(x_train, y[train], groups, x_test, "classification", 0)[:, 1])

    assert auc(x[train], x[test]) > 0.9
    assert abs(auc(*regress_out(x[train], fd[train], x[test], fd[test])) - 0.5) < 0.15


def test_the_within_site_motion_control_is_fd_centered_per_site():
    cohort = datasets.Dataset.from_dict(
        {
            "site": ["A", "A", "A", "B", "B", "C", "C", "C"],
            "func_mean_fd": [0.1, 0.2, 0.6, 1.0, 3.0, 0.05, None, 0.15],
        }
    )
    sites = np.asarray(cohort["site"])
    centered = site_centered_control("func_mean_fd")(cohort)
    assert centered.shape == (8, 1)
    for site in "ABC":
        assert abs(centered[sites == site, 0].mean()) < 1e-12
    assert np.allclose(centered[:, 0], [-0.2, -0.1, 0.3, -1.0, 1.0, -0.05, 0.0, 0.05])
    scaled = site_centered_control("func_mean_fd", scale=True)(cohort)
    assert np.allclose(scaled[sites == "B", 0], [-1.0, 1.0])


def test_the_abide_tasks_score_motion_within_sites(abide_small, backbone_200):
    """The within-site control next to the raw one; a control that must fail, so only a loose bound: on 3 sites
    motion centered per site does not read diagnosis far from chance."""
    for name in ("abide-dx", "abide-sex", "abide-age"):
        assert set(TASKS[name].controls) == {"motion", "motion_within_site"}
    report, _ = evaluate_backbone(
        abide_small,
        label="dx",
        task_type="classification",
        backbone=backbone_200,
        split="leave-site-out",
        controls=TASKS["abide-dx"].controls,
        settings=FC_ONLY,
    )
    result = report["methods"]["control_motion_within_site"]
    assert result["ci_unit"] == "group" and result["estimate"] == result["mean_over_groups"]
    assert 0.2 < result["mean_over_groups"] < 0.8
    assert report["confounds_regressed"] == []


def test_sex_is_estimated_over_the_sites_that_hold_both_sexes(shared_data, backbone_200):
    """OHSU and SBL have no female subjects: they are listed, left out of the site mean, and the estimate is the mean
    over the sites where the AUC is defined."""
    from mnemodyn_hf.data import load_abide_pcp

    cohort = load_abide_pcp(shared_data / "abide_dev", sites=("OHSU", "OLIN", "SBL", "UCLA_2"))
    report, _ = evaluate_backbone(
        cohort, label="sex", task_type="classification", backbone=backbone_200, split="leave-site-out", settings=FC_ONLY
    )
    result = report["methods"]["fc_pearson"]
    assert report["groups_lacking_a_class"] == sorted(result["undefined_groups"]) == ["OHSU", "SBL"]
    assert result["estimate"] == result["mean_over_groups"]
    assert result["mean_over_groups"] == pytest.approx(np.mean([result["per_group"][s] for s in ("OLIN", "UCLA_2")]))


def test_a_missing_confound_value_names_the_column_and_the_fix(abide_small, backbone_200):
    assert confound_matrix(abide_small, ()) is None
    with pytest.raises(ValueError, match=r"'func_mean_fd'.*2 row\(s\) have no value.*Drop those rows"):
        evaluate_backbone(
            abide_small,
            label="dx",
            task_type="classification",
            backbone=backbone_200,
            split="leave-site-out",
            settings=REGRESS_FD,
        )
    with pytest.raises(ValueError, match="no such column"):
        confound_matrix(abide_small, ("not_a_column",))


def test_the_frozen_head_reads_its_inputs_with_fd_regressed_out(abide_with_fd, backbone_200, monkeypatch):
    from mnemodyn_hf.evaluation import HeadSettings

    fd = np.asarray(abide_with_fd["func_mean_fd"], dtype=np.float64)
    seen = []
    original = harness.frozen_head_scores

    def recording(config, x_train, *args):
        seen.append(x_train)
        return original(config, x_train, *args)

    monkeypatch.setattr(harness, "frozen_head_scores", recording)
    settings = EvaluationSettings(
        methods=("mnemodyn_head",),
        num_bootstrap=200,
        regress_out=("func_mean_fd",),
        heads=HeadSettings(head_epochs=2, batch_size=32),
    )
    report, _ = evaluate_backbone(
        abide_with_fd,
        label="dx",
        task_type="classification",
        backbone=backbone_200,
        split="leave-site-out",
        settings=settings,
    )
    assert report["confounds_regressed_from"] == ["mnemodyn_head"]
    sites = np.asarray(abide_with_fd["site"])
    for fold, x_train in zip(report["folds"], seen, strict=True):
        assert _max_abs_correlation(np.asarray(x_train), fd[sites != fold["name"]]) < 1e-8, fold["name"]
