"""Does more unlabelled data give better features? Pretrain on 25 / 50 / 100 / 211 subjects of the ABIDE
pretraining sites (`abide_corpora.PRETRAINING_SITES`), then score each backbone on subjects it never saw:
masked reconstruction (`abide-reconstruction`, held-out subjects of all sites, every masking) and autism diagnosis
(`abide-dx`, leave-site-out over the six evaluation site groups: the harness drops the pretraining subjects).

    python -m benchmarks.abide_scaling_study --data ../shared/data/abide_dev --work /tmp/scaling \\
        --sizes 25 50 100 211 --json benchmarks/results/abide_scaling.json --plot docs/abide_scaling.png

Every size uses the same recipe (`RECIPE`, the `--recipe` JSON overrides it), steps and seed; a size's corpus is a
random subset of the 211 subjects (seed 0), so smaller corpora are not nested in larger ones.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from accelerate.state import AcceleratorState, GradientState

from mnemodyn_hf.data import load_abide_pcp
from mnemodyn_hf.evaluation import EvaluationSettings, evaluate_backbone
from mnemodyn_hf.evaluation.reconstruction import evaluate_reconstruction
from mnemodyn_hf.evaluation.tasks import get_task
from mnemodyn_hf.hub import read_pretraining_subjects
from mnemodyn_hf.plotting import pyplot
from mnemodyn_hf.training import PretrainingArguments, pretrain

from .abide_corpora import PRETRAINING_SITES, build

#: The site groups every size is scored on (never pretrained on by any size).
EVALUATION_SITES = ("LEUVEN_1", "LEUVEN_2", "OHSU", "OLIN", "PITT", "SBL")

#: The pretraining options every size shares (the recommended recipe of docs/representations.md at this scale).
RECIPE = {
    "window_frames": 64,
    "window_stride": 32,
    "per_device_batch_size": 16,
    "max_steps": 1000,
    "learning_rate": 3e-3,
    "warmup_steps": 50,
    "eval_every": 250,
    "checkpoint_every": 1000,
    "validation_fraction": 0.1,
    "report_to": "csv",
    "mask_span_frames": 3,
    "mask_ratio": 0.5,
    "mask_layout": "per_roi",
}
MODEL = {"num_layers": 2, "projection_size": 64, "latent_channels": 32, "wavelet_levels": 3, "num_coarse_layers": 2}
DX_METHODS = (
    "mnemodyn_linear_probe",
    "mnemodyn_correlation_probe",
    "mnemodyn_tangent_probe",
    "mnemodyn_latent_probe",
    "random_backbone_correlation",
    "random_backbone_tangent",
    "fc_pearson",
    "fc_tangent",
)


def _summary(result: dict) -> dict:
    """A method's metric, value and CI (without the per-subject and per-fold details)."""
    return {key: result[key] for key in ("metric", "value", "ci95")}


def run_size(data: str, work: Path, subjects: int, recipe: dict, bootstrap: int) -> dict:
    """Corpus, pretraining and both evaluations for one corpus size; returns the numbers."""
    folder = work / f"n{subjects}"
    model, timing = folder / "run" / "model", folder / "pretraining_minutes.txt"
    if not (model / "model.safetensors").is_file():  # (a folder pretrained by an earlier call is evaluated again)
        corpus = folder / "corpus"
        build(data, str(corpus), subjects=subjects)
        model_config = folder / "model.json"
        model_config.write_text(json.dumps(MODEL))
        started = time.perf_counter()
        arguments = PretrainingArguments(
            output_dir=str(folder / "run"), corpus=str(corpus), model_config=str(model_config), **recipe
        )
        model = _pretrain(arguments)
        timing.write_text(f"{(time.perf_counter() - started) / 60:.2f}")
    split = read_pretraining_subjects(model)
    count, minutes = len(split["train"]) + len(split["validation"]), float(timing.read_text())
    reconstruction, dx = evaluate(data, model, bootstrap)
    return {
        "subjects": count,
        "pretraining_minutes": round(minutes, 2),
        "reconstruction": {
            masking: {name: _summary(result["methods"][name]) for name in ("mnemodyn", result["strongest_baseline"])}
            | {"strongest_baseline": result["strongest_baseline"]}
            for masking, result in reconstruction["maskings"].items()
        },
        "abide_dx": {name: _summary(result) for name, result in dx["methods"].items()},
        "abide_dx_subjects": dx["subjects"],
    }


def _pretrain(arguments: PretrainingArguments) -> Path:
    try:
        return pretrain(arguments)
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()


def evaluate(data: str, model: Path, bootstrap: int) -> tuple[dict, dict]:
    """Reconstruction and abide-dx (leave-site-out) on the `EVALUATION_SITES` subjects, the same for every size;
    the reconstruction predictors are fitted on the model's own training subjects."""
    train = set(read_pretraining_subjects(model)["train"])
    runs = load_abide_pcp(data, sites=[*PRETRAINING_SITES, *EVALUATION_SITES])
    sites = set(EVALUATION_SITES)
    runs = runs.filter(lambda subject, site: subject in train or site in sites, input_columns=["subject", "site"])
    reconstruction = evaluate_reconstruction(model, runs, num_bootstrap=bootstrap)
    spec = get_task("abide-dx")
    cohort = load_abide_pcp(data, sites=list(EVALUATION_SITES))
    settings = EvaluationSettings(methods=DX_METHODS, num_bootstrap=bootstrap)
    dx, _ = evaluate_backbone(
        cohort,
        label=spec.label,
        task_type=spec.task_type,
        backbone=model,
        split="leave-site-out",
        controls=spec.controls,
        settings=settings,
    )
    return reconstruction, dx


def plot(results: list[dict], path: Path) -> None:
    plt = pyplot()
    sizes = [r["subjects"] for r in results]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for masking in results[0]["reconstruction"]:
        model = [r["reconstruction"][masking]["mnemodyn"] for r in results]
        axes[0].errorbar(sizes, [m["value"] for m in model], yerr=_errors(model), marker="o", capsize=3,
                         label=f"MnemoDyn, {masking} masks")  # fmt: skip
        best = [r["reconstruction"][masking][r["reconstruction"][masking]["strongest_baseline"]] for r in results]
        axes[0].plot(sizes, [b["value"] for b in best], linestyle="--", label=f"strongest baseline, {masking}")
    axes[0].set(xscale="log", xlabel="pretraining subjects", ylabel="R^2 of hidden entries (held-out subjects)")
    axes[0].legend(fontsize=7)
    for method in results[0]["abide_dx"]:
        values = [r["abide_dx"][method] for r in results]
        axes[1].errorbar(sizes, [v["value"] for v in values], yerr=_errors(values), marker="o", capsize=3, label=method)
    axes[1].axhline(0.5, color="black", linewidth=0.8)
    axes[1].set(xscale="log", xlabel="pretraining subjects", ylabel="abide-dx ROC-AUC (leave-site-out, 95 % CI)")
    axes[1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _errors(results: list[dict]) -> list[list[float]]:
    return [[r["value"] - r["ci95"][0] for r in results], [r["ci95"][1] - r["value"] for r in results]]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the abide_dev folder")
    parser.add_argument("--work", required=True, type=Path, help="folder for corpora, runs and reports")
    parser.add_argument("--sizes", nargs="+", type=int, default=[25, 50, 100, 211])
    parser.add_argument("--recipe", help="JSON with PretrainingArguments fields overriding RECIPE")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args(argv)
    recipe = RECIPE | (json.loads(Path(args.recipe).read_text()) if args.recipe else {})
    results = []
    for size in args.sizes:
        results.append(run_size(args.data, args.work, size, recipe, args.bootstrap))
        args.json.write_text(json.dumps({"recipe": recipe, "model": MODEL, "results": results}, indent=2))
        last = results[-1]
        print(
            f"{size} subjects: " + ", ".join(f"{name} {value['value']:.3f}" for name, value in last["abide_dx"].items())
        )
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
