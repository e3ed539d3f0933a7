"""Event-locked connattractor heat-vs-rest epochs: layout, steady state, balance, and controls that must fail.

Controls (logistic regression, class_weight="balanced", GroupKFold(5) on subject, ROC-AUC of the pooled out-of-fold
probabilities), measured when this test was written:

| control | new epochs (3 frames) | legacy 10-frame windows |
|---|---|---|
| position only ([c, c**2], c = centre frame / run length) | 0.54 | 1.00 |
| mean within-sample SD only | 0.55 | 0.70 |
"""

from __future__ import annotations

import importlib.util
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnemodyn_hf.data import (
    check_cohort_features,
    load_connattractor,
    load_connattractor_heat_epochs,
    load_connattractor_heat_windows,
    position_only_features,
)
from mnemodyn_hf.data.connattractor import EVENTS_FILE, heat_rest_epochs, within_sample_sd_features

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("resources") is None, reason="needs `pip install --no-deps connattractor==0.1.0`"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return load_connattractor(cache_dir=tmp_path_factory.mktemp("connattractor")).with_format("numpy")


@pytest.fixture(scope="module")
def epochs(tmp_path_factory):
    return load_connattractor_heat_epochs(cache_dir=tmp_path_factory.mktemp("connattractor-epochs"))


def grouped_cv_auc(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """ROC-AUC of a balanced logistic regression under subject-grouped 5-fold CV (pooled out-of-fold scores)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict

    model = LogisticRegression(class_weight="balanced")
    scores = cross_val_predict(model, features, labels, groups=groups, cv=GroupKFold(5), method="predict_proba")
    return float(roc_auc_score(labels, scores[:, 1]))


def test_layout_dtypes_and_counts(epochs):
    assert check_cohort_features(epochs.features) == 122
    dtypes = {name: epochs.features[name].dtype for name in ("heat", "epoch_start", "trial", "run_frames")}
    assert dtypes == {"heat": "int64", "epoch_start": "int32", "trial": "int32", "run_frames": "int32"}
    rows = epochs.with_format("numpy")
    assert {row["bold"].shape for row in rows} == {(3, 122)}
    assert rows[0]["bold"].dtype == np.float32
    assert set(epochs["tr"]) == {2.0} and set(epochs["run_frames"]) == {191}
    assert len(set(epochs["subject"])) == 33 and set(epochs["run"]) == {"03", "07"}
    assert set(epochs["session"]) == set(epochs["site"]) == {""}
    assert Counter(epochs["heat"]) == {1: 660, 0: 568}
    assert set(epochs["trial"]) == set(range(10))


def test_sub01_run03_by_hand(epochs, runs):
    """Delayed events of sub-01 run 03 (see test_offline's hand check) cover, in frames: heat 8-13, rating 18-23,
    ITI 24-27, heat 28-33, rating 37-41, ITI 42-44, heat 45-51. Centred 3-frame epochs start at 8 + (6 - 3) // 2 = 9,
    24, 29, 42 and 45 + (7 - 3) // 2 = 47."""
    rows = epochs.filter(lambda s, r: s == "01" and r == "03", input_columns=["subject", "run"]).with_format("numpy")
    first = list(zip(rows["heat"][:5].tolist(), rows["epoch_start"][:5].tolist(), rows["trial"][:5].tolist()))
    assert first == [(1, 9, 0), (0, 24, 0), (1, 29, 1), (0, 42, 1), (1, 47, 2)]
    run = next(row for row in runs if row["subject"] == "01" and row["run"] == "03")
    bold = run["bold"].astype(np.float64)
    zscored = (bold - bold[5:].mean(0)) / bold[5:].std(0)  # per-run z-score over the steady-state frames 5..190
    np.testing.assert_allclose(rows["bold"][1], zscored[24:27], rtol=1e-5, atol=1e-5)


def test_epochs_agree_with_frame_labels_and_interleave(epochs, runs):
    """Heat epochs hold only `heat_frame_labels` heat frames, rest epochs only rest frames (never rating), no two
    epochs of a run overlap, and in time order every rest epoch of trial i lies between heats i and i + 1."""
    frame_labels = {(row["subject"], row["run"]): row["heat"] for row in runs}
    per_run = defaultdict(list)
    for subject, run, label, start, trial in zip(
        epochs["subject"], epochs["run"], epochs["heat"], epochs["epoch_start"], epochs["trial"]
    ):
        assert set(frame_labels[subject, run][start : start + 3]) == {label}
        per_run[subject, run].append((start, label, trial))
    for run_epochs in per_run.values():
        ordered = sorted(run_epochs)
        assert all(later[0] >= earlier[0] + 3 for earlier, later in zip(ordered, ordered[1:]))
        in_time_order = [(trial, label) for _, label, trial in ordered]  # trial 0 heat, trial 0 rest, trial 1 heat...
        assert in_time_order == sorted(in_time_order, key=lambda item: (item[0], -item[1]))


def test_no_epoch_holds_non_steady_state_frames(epochs, runs):
    assert min(epochs["epoch_start"]) >= 5
    # Without a haemodynamic delay sub-01 run 03's first heat covers frames 5-10 and its ITI frames 21-24: dropping
    # 8 frames shortens that heat to 8-10, dropping 12 removes it, so the first epoch is then trial 0's rest.
    run = next(row for row in runs if row["subject"] == "01" and row["run"] == "03")
    events_file = Path(run["path"]).with_name(EVENTS_FILE.format(subject="01", run="03"))
    events = pd.read_csv(events_file, sep="\t", na_values=["n/a"])
    first_epoch = {0: (1, 6, 0), 5: (1, 6, 0), 8: (1, 8, 0), 12: (0, 21, 0)}
    for steady, expected in first_epoch.items():
        found = heat_rest_epochs(events, 191, haemodynamic_delay=0.0, steady_state_frames=steady)
        assert min(start for _, start, _ in found) >= steady
        assert found[0] == expected


def test_heat_and_rest_roughly_balanced_per_run(epochs):
    counts = Counter(zip(epochs["subject"], epochs["run"], epochs["heat"]))
    runs = {(subject, run) for subject, run, _ in counts}
    assert len(runs) == 66
    for subject, run in runs:
        assert counts[subject, run, 1] == 10
        assert 7 <= counts[subject, run, 0] <= 10


def test_position_and_sd_controls_are_near_chance_on_epochs_not_on_legacy_windows(epochs):
    labels, groups = np.asarray(epochs["heat"]), np.asarray(epochs["subject"])
    position_new = grouped_cv_auc(position_only_features(epochs), labels, groups)
    sd_new = grouped_cv_auc(within_sample_sd_features(epochs), labels, groups)

    windows = load_connattractor_heat_windows(window=10)
    old_labels, old_groups = np.asarray(windows["heat"]), np.asarray(windows["subject"])
    position_old = grouped_cv_auc(position_only_features(windows, run_frames=191), old_labels, old_groups)
    sd_old = grouped_cv_auc(within_sample_sd_features(windows), old_labels, old_groups)
    print(f"position-only AUC: epochs {position_new:.3f}, legacy windows {position_old:.3f}")
    print(f"SD-only AUC: epochs {sd_new:.3f}, legacy windows {sd_old:.3f}")

    assert position_new <= 0.60 and sd_new <= 0.60
    assert position_old >= 0.95 and sd_old >= 0.65
