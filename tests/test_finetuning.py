import numpy as np
import pytest

from mnemodyn_hf import MnemoDynConfig
from mnemodyn_hf.data import check_subject_disjoint, load_connattractor_heat_windows, subject_split
from mnemodyn_hf.finetuning import DownstreamSettings, evaluate_downstream


@pytest.fixture(scope="module")
def heat_windows():
    """Real heat-vs-rest windows (10 frames, 20 s) of connattractor subjects, each run z-scored on its own."""
    return load_connattractor_heat_windows(subjects=[f"{i:02d}" for i in range(1, 11)])


CONFIG = MnemoDynConfig(num_rois=122, num_layers=1, projection_size=16, latent_channels=8, context_length=32,
                        wavelet_levels=3, repetition_time=2.0, head_hidden_size=16)  # fmt: skip
SETTINGS = DownstreamSettings(seeds=(0, 1), epochs=2, batch_size=32, early_stopping_patience=1)


def test_protocol_reports_model_and_fc_baseline_on_subject_splits(heat_windows, tmp_path):
    report = evaluate_downstream(heat_windows, "heat", CONFIG, "classification", tmp_path, SETTINGS)
    assert [s["seed"] for s in report["per_seed"]] == [0, 1]
    for seed in report["per_seed"]:
        subjects = seed["subjects"]
        assert not set(subjects["train"]) & set(subjects["test"]) and not set(subjects["validation"]) & set(subjects["test"])
        # model selection saw validation metrics only: no evaluation during training carried a test metric
        assert seed["selection_evaluations"] and all(
            all(not name.startswith("test_") for name in names) for names in seed["selection_evaluations"]
        )
        assert 0 <= seed["model"]["roc_auc"] <= 1 and 0 <= seed["fc_baseline"]["roc_auc"] <= 1
    mean, sd = report["mean_sd"]["model"]["roc_auc"]
    assert np.isfinite(mean) and sd >= 0 and set(report["mean_sd"]) == {"model", "fc_baseline"}


def test_regression_metrics_are_in_the_original_units(heat_windows, tmp_path):
    targets = heat_windows.map(lambda row: {"onset_seconds": 2.0 * float(row["window_start"]) + 100.0})
    report = evaluate_downstream(targets, "onset_seconds", CONFIG, "regression", tmp_path,
                                 DownstreamSettings(seeds=(0,), epochs=1, batch_size=32))  # fmt: skip
    model = report["per_seed"][0]["model"]
    spread = np.std(targets["onset_seconds"])
    # errors in seconds (targets span ~0-380 s): a z-scored-unit error would be ~1, far below the spread
    assert model["mae"] > 0.1 * spread and np.isfinite(model["r2"])


def test_a_subject_in_two_splits_raises(heat_windows):
    splits = subject_split(heat_windows, {"train": 0.7, "test": 0.3}, seed=0)
    leaked = {"train": splits["train"], "test": splits["test"].select(range(3)).flatten_indices()}
    check_subject_disjoint(leaked)  # disjoint: fine
    leaked["test"] = splits["train"].select(range(2))
    with pytest.raises(ValueError, match="Subject leakage"):
        check_subject_disjoint(leaked)
