"""An in-sample bound within one linear family: how much the harness's linear-Gaussian predictors gain when they
are fitted on the evaluated subjects themselves.

This is not a ceiling on masked reconstruction: a predictor outside the family (nonlinear, longer context) may do
better. It scores, on the same held-out windows and masks as `mnemodyn evaluate --task abide-reconstruction`,
predictors of the harness's family that are *allowed to cheat* by fitting on the evaluated subjects:

| oracle | fitted on |
|---|---|
| `scm_fitted_on_evaluated` | spatial conditional mean, covariance of all held-out runs (every entry, hidden ones too) |
| `ridge_fitted_on_evaluated` | spatio-temporal ridge fitted on the held-out runs (its own masks, not the test masks) |
| `scm_own_subject` | per window: its run's other frames' covariance mixed with the group's (best weight) |

None of them is a method: each reads the evaluated data (`ridge_fitted_on_evaluated` also looks 4 frames each way,
the fair ridge 2). The fair predictors are the harness's fitted ones: the spatial conditional mean, the
spatio-temporal ridge and the window-adapted conditional mean (`AdaptiveConditionalMean`, which reads the window's
own covariance from its visible entries). An oracle's margin over the strongest fair predictor is what a
predictor of this family (linear-Gaussian in space, linear filters of +-4 frames in time) gains from knowing the
evaluated subjects' statistics; each margin (the best oracle's, the model's) comes with a paired 95 % interval and
permutation p over subjects (`compare_sums`).

    python -m benchmarks.reconstruction_ceiling r5/model --task abide-reconstruction \\
        --json benchmarks/results/reconstruction_ceiling.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mnemodyn_hf.evaluation.adaptive_spatial import AdaptiveConditionalMean, mixed_covariance_predictor
from mnemodyn_hf.evaluation.reconstruction import (
    MASKINGS,
    HeldOutWindows,
    compare_sums,
    held_out_windows,
    model_fill,
    score_fills,
)
from mnemodyn_hf.evaluation.spatial_predictors import SpatialConditionalMean, ledoit_wolf_covariance
from mnemodyn_hf.evaluation.spatiotemporal_ridge import SpatioTemporalRidge
from mnemodyn_hf.evaluation.tasks import RECONSTRUCTION_TASKS

FAIR = ("spatial_conditional_mean", "spatiotemporal_ridge", "adaptive_conditional_mean")
OWN_SUBJECT_WEIGHTS = (0.0, 0.25, 0.5, 0.75)  # weight of the subject's own covariance against the group's


def own_subject_fill(
    data: HeldOutWindows, visible: torch.Tensor, weight: float, group: SpatialConditionalMean
) -> torch.Tensor:
    """Each window filled by the conditional mean under (1 - w) group + w own covariance
    (`mixed_covariance_predictor`), the subject's own covariance from the other frames of its run (hidden entries
    included, the window itself never)."""
    out = data.values.clone()
    frames = data.values.shape[1]
    row = 0
    for _, bold in data.held_out_runs:  # windows are the runs' non-overlapping windows, in this order
        count = len(bold) // frames
        rows = np.arange(row, row + count)
        row += count
        for index in rows:
            start = (index - rows[0]) * frames
            rest = np.concatenate([bold[:start], bold[start + frames :]])
            own = ledoit_wolf_covariance(torch.as_tensor(rest))[1] if len(rest) > 1 else group.covariance_
            scm = mixed_covariance_predictor(group, own, weight)
            out[index : index + 1] = scm.fill(data.values[index : index + 1], visible[index : index + 1])
    if row != len(out):
        raise RuntimeError("the held-out runs and their windows disagree; held_out_windows changed its layout.")
    return out


def ceiling(data: HeldOutWindows, seed: int, num_bootstrap: int) -> dict:
    values = data.values
    evaluated_runs = [torch.as_tensor(bold) for _, bold in data.held_out_runs]
    fair_scm = SpatialConditionalMean().fit(data.train_runs)
    evaluated_scm = SpatialConditionalMean().fit(evaluated_runs)
    report = {"windows": len(values), "subjects": len(set(data.subjects)), "maskings": {}}
    options = {"num": num_bootstrap, "seed": seed}
    for masking in tqdm(MASKINGS, desc="Maskings"):
        hidden = data.masks(masking, seed)
        visible = ~hidden
        fair_ridge = SpatioTemporalRidge(seed=seed).fit(data.train_runs, data.mask_function(masking, seed))
        adaptive = AdaptiveConditionalMean().fit(data.train_runs, data.mask_function(masking, seed), values.shape[1])
        oracle_ridge = SpatioTemporalRidge(context=4, seed=seed)
        oracle_ridge.fit(evaluated_runs, data.mask_function(masking, seed + 1))
        fills = {
            "mnemodyn": model_fill(data.model, values, hidden),
            "spatial_conditional_mean": fair_scm.fill(values, visible),
            "spatiotemporal_ridge": fair_ridge.fill(values, visible),
            "adaptive_conditional_mean": adaptive.fill(values, visible),
            "scm_fitted_on_evaluated": evaluated_scm.fill(values, visible),
            "ridge_fitted_on_evaluated": oracle_ridge.fill(values, visible),
        }
        if masking == "per_roi":  # whole-frame and forecast frames have nothing visible to condition on
            for weight in OWN_SUBJECT_WEIGHTS[1:]:
                fills[f"scm_own_subject_{weight}"] = own_subject_fill(data, visible, weight, evaluated_scm)
        scored = score_fills(fills, values, hidden, data.subjects, num_bootstrap, seed)
        scores, sums = scored["methods"], scored["sums"]
        members = [name for name in scores if name.startswith("scm_own_subject_")]
        if members:  # the oracle picks its weight on the test masks
            best = max(members, key=lambda name: scores[name]["value"])
            scores["scm_own_subject"] = {**scores[best], "weight": float(best.rsplit("_", 1)[1])}
            sums["scm_own_subject"] = sums[best]
            for name in members:
                scores.pop(name)
        strongest = max(FAIR, key=lambda name: scores[name]["value"])
        oracles = [name for name in scores if name not in (*FAIR, "mnemodyn")]
        best_oracle = max(oracles, key=lambda name: scores[name]["value"])
        report["maskings"][masking] = {
            "methods": {name: {k: v for k, v in s.items() if k != "per_subject"} for name, s in scores.items()},
            "strongest_fair": strongest,
            "best_oracle": best_oracle,
            "oracle_margin": scores[best_oracle]["value"] - scores[strongest]["value"],
            "model_margin": scores["mnemodyn"]["value"] - scores[strongest]["value"],
            "oracle_margin_paired": compare_sums(sums[best_oracle], sums[strongest], data.subjects, **options),
            "model_margin_paired": compare_sums(sums["mnemodyn"], sums[strongest], data.subjects, **options),
        }
    return report


def format_table(report: dict) -> str:
    header = "| masking | model | strongest fair predictor | best oracle | oracle margin [95 % CI], p | model margin |"
    lines = [header, "|---|---|---|---|---|---|"]
    for masking, row in report["maskings"].items():

        def cell(name, methods=row["methods"]):
            low, high = methods[name]["ci95"]
            return f"{name} {methods[name]['value']:.3f} [{low:.3f}, {high:.3f}]"

        def margin(paired):
            low, high = paired["ci95"]
            return f"{paired['difference']:+.3f} [{low:+.3f}, {high:+.3f}], p {paired['p']:.3f}"

        lines.append(
            f"| {masking} | {row['methods']['mnemodyn']['value']:.3f} | {cell(row['strongest_fair'])} | "
            f"{cell(row['best_oracle'])} | {margin(row['oracle_margin_paired'])} | "
            f"{margin(row['model_margin_paired'])} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a `mnemodyn pretrain` model folder")
    parser.add_argument("--task", choices=sorted(RECONSTRUCTION_TASKS), default="abide-reconstruction")
    parser.add_argument("--data", default=None, help="the task's data folder (default: MNEMODYN_SHARED_DATA)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    data = held_out_windows(args.model, RECONSTRUCTION_TASKS[args.task].load(args.data))
    report = {"model": str(args.model), "task": args.task, **ceiling(data, args.seed, args.bootstrap)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    print(format_table(report))


if __name__ == "__main__":
    main()
