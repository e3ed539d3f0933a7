"""How much fixed per-frame maps of the ROIs, the same for every subject, move the FC baselines.

For the affine-invariant metric, the tangent vector of a covariance C at the group mean G is
log(G^-1/2 C G^-1/2); mapping every run through one invertible ROI transform W (C -> W C W^T, G -> W G W^T) only
rotates those vectors, and an L2-penalised linear model is invariant to rotations of its features. The harness's
`TangentConnectivity` departs from that ideal (per-ROI z-scoring, Ledoit-Wolf shrinkage, the log-Euclidean mean), so
the invariance is approximate. This probe measures it on the task a backbone is scored on: the FC baselines of the
input and of the input mapped through fixed random transforms the same for every subject:

| variant | every run x (T, R) becomes |
|---|---|
| `input` | x |
| `linear` | x W, W = I + s G / sqrt(R), G standard normal (a fixed linear mixing of ROIs) |
| `nonlinear` | x + s tanh(x V) U, V and U with N(0, 1/R) entries (a fixed random residual layer, per frame) |
| `linear_after_zscore` | z(x) W, z the per-ROI z-score of the run: the same mixing without the ROIs' amplitudes |

Each variant is compared with the input by `paired_comparison` on the same folds (with site groups: the mean
over sites of the per-site difference, a cluster-bootstrap interval and a sign-flip test). The probe covers
per-frame maps only: a map acting across time (a temporal filter) changes each subject's spectrum differently and
is not covered.

    python -m benchmarks.tangent_invariance r5/model --task abide-dx --scale 0.5 --json results/tangent_invariance.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mnemodyn_hf.evaluation.harness import EvaluationSettings, evaluate_backbone
from mnemodyn_hf.evaluation.statistics import COMPARABLE_SCALE, paired_comparison, primary_metric
from mnemodyn_hf.evaluation.tasks import TASKS

METHODS = ("fc_tangent", "fc_pearson")


def random_maps(rois: int, scale: float, seed: int) -> dict:
    """The fixed maps of each variant (see the module docstring), drawn once from `seed`."""
    rng = np.random.default_rng(seed)
    gaussian = rng.standard_normal((3, rois, rois)) / np.sqrt(rois)
    mixing = np.eye(rois) + scale * gaussian[0]
    return {
        "input": lambda x: x,
        "linear": lambda x: x @ mixing,
        "nonlinear": lambda x: x + scale * np.tanh(x @ gaussian[1]) @ gaussian[2],
        "linear_after_zscore": lambda x: zscore(x) @ mixing,
    }


def zscore(x: np.ndarray) -> np.ndarray:
    """Each ROI of a (T, R) run to mean 0 and standard deviation 1 (constant ROIs to 0)."""
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def invariance(task: str, backbone: Path, data: str | None, scale: float, seed: int, bootstrap: int) -> dict:
    spec = TASKS[task]
    cohort = spec.load(data)
    rois = np.asarray(cohort[0]["bold"]).shape[1]
    settings = EvaluationSettings(methods=METHODS, num_bootstrap=bootstrap, seed=seed)
    metric_name, metric = primary_metric(spec.task_type)
    runs, results = {}, {"task": task, "split": spec.splits[0], "scale": scale, "variants": {}}
    for name, transform in random_maps(rois, scale, seed).items():

        def apply(row, f=transform):
            return {"bold": f(np.asarray(row["bold"], np.float64)).astype(np.float32)}

        mapped = cohort.map(apply)
        report, predictions = evaluate_backbone(
            mapped, label=spec.label, task_type=spec.task_type, backbone=backbone, split=spec.splits[0],
            train_sites=spec.train_sites, settings=settings,
        )  # fmt: skip
        runs[name] = predictions
        results["variants"][name] = {m: report["methods"][m]["estimate"] for m in METHODS}
        results["variants"][name]["ci95"] = {m: report["methods"][m]["ci95"] for m in METHODS}
    for name in ("linear", "nonlinear", "linear_after_zscore"):
        for method in METHODS:
            base, other = runs["input"], runs[name]
            assert np.array_equal(base["unit"], other["unit"])
            difference = paired_comparison(
                metric, base["label"], other[method], base[method], base["unit"], base.get("group"),
                scale=COMPARABLE_SCALE[metric_name], num=bootstrap,
            )  # fmt: skip
            results["variants"][name][f"{method}_minus_input"] = difference
    results["metric"] = metric_name
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbone", type=Path, help="a backbone folder: its pretraining subjects are left out")
    parser.add_argument("--task", choices=sorted(TASKS), default="abide-dx")
    parser.add_argument("--data", default=None)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = invariance(args.task, args.backbone, args.data, args.scale, args.seed, args.bootstrap)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=float))
    print(f"| variant | {' | '.join(METHODS)} | tangent - input [95 % CI] |\n|---|---|---|---|")
    for name, row in results["variants"].items():
        change = row.get("fc_tangent_minus_input")
        if change is not None:
            low, high = change["ci95"]
            change = f"{change['difference']:+.3f} [{low:+.3f}, {high:+.3f}], p {change['p']:.3f}"
        print(f"| {name} | " + " | ".join(f"{row[m]:.3f}" for m in METHODS) + f" | {change or ''} |")


if __name__ == "__main__":
    main()
