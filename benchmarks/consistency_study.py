"""The clean-input consistency term of the masked objective (`--consistency-weight`) against none, on the 18 HCP
subjects at TR 0.72 s: the recipe, model and seeds of `benchmarks.mask_input_study`.

For each seed, `--mask-inputs` entry and `--weights` entry, pretrain the demo's model on `load_hcp_aal2(DATA)`
(13 train / 2 validation / 3 test subjects for seed 0; the split is drawn from the seed) and score, on the test
subjects' windows:

* masked reconstruction R^2 under the per-ROI, whole-frame and forecast masks (`model_fill`), each weight compared
  with weight 0 on the same windows and masks (`compare_sums`: paired over subjects);
* what the consistency term acts on: the backbone's output on clean input against its input (||h_clean - x|| /
  ||x||, pooled) and the mean squared gap between its outputs on the masked and the clean input under each masking.

The validation subjects' metrics of each run (`pretraining_metrics.json`) are reported beside them.

    python -m benchmarks.consistency_study --data ../shared/data/hcp_aal2 --work consistency_study --seeds 0 1 2 \\
        --json benchmarks/results/consistency_study.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.mask_input_study import RECIPE
from mnemodyn_hf.apps.demo import DEMO_MODEL
from mnemodyn_hf.data import load_hcp_aal2
from mnemodyn_hf.evaluation.reconstruction import MASKINGS, compare_sums, held_out_windows, model_fill, pooled_r2
from mnemodyn_hf.masked_inputs import backbone_input
from mnemodyn_hf.objectives import hide_entries
from mnemodyn_hf.reconstruction_predictors import scored_sums

from .hcp_pretraining import pretrain_on_hcp


def train(work: Path, data: str, mask_input: str, weight: float, seed: int) -> Path:
    """Pretrain the demo model with `RECIPE`, `mask_input` and `consistency_weight=weight`; the model/ folder."""
    output_dir = work / f"{mask_input}-w{weight:g}-{seed}"
    options = dict(mask_input=mask_input, consistency_weight=weight, seed=seed, **RECIPE)
    return pretrain_on_hcp(data, output_dir, DEMO_MODEL, **options)


@torch.no_grad()
def clean_input_statistics(data, seed: int) -> dict[str, float]:
    """||h_clean - x|| / ||x|| over the test windows, and the mean (h_masked - h_clean)^2 under each masking (the
    backbone reading the masked input as `config.mask_input` prescribes)."""
    model, values = data.model, data.values
    clean = model.mnemodyn(values).last_hidden_state
    result = {"clean_output_change": float((clean - values).norm() / values.norm())}
    for masking in MASKINGS:
        corruption = hide_entries(values, data.masks(masking, seed))
        read = backbone_input(corruption.corrupted, corruption.visible, model.config.mask_input, model.mask_embedding)
        result[f"consistency_gap_{masking}"] = float(((model.mnemodyn(read).last_hidden_state - clean) ** 2).mean())
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the hcp_aal2 folder")
    parser.add_argument("--work", type=Path, default=Path("consistency_study"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--mask-inputs", nargs="+", default=["token"])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0], help="the first is the reference")
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    runs = load_hcp_aal2(args.data)
    reference, rows = args.weights[0], []
    for seed in args.seeds:
        for mask_input in args.mask_inputs:
            sums, subjects = {}, None
            for weight in args.weights:
                started = time.perf_counter()
                torch.manual_seed(seed)
                folder = train(args.work, args.data, mask_input, weight, seed)
                seconds = time.perf_counter() - started
                data = held_out_windows(folder, runs)
                subjects, sums[weight] = data.subjects, {}
                row = {"seed": seed, "mask_input": mask_input, "consistency_weight": weight, "train_seconds": seconds}
                row["test_subjects"] = sorted({str(s) for s in subjects})
                row["validation"] = json.loads((folder / "pretraining_metrics.json").read_text())
                for masking in MASKINGS:
                    hidden = data.masks(masking, seed)
                    sums[weight][masking] = scored_sums(
                        model_fill(data.model, data.values, hidden), data.values, hidden
                    )
                    row[f"r2_{masking}"] = pooled_r2(None, sums[weight][masking].numpy())
                row |= clean_input_statistics(data, seed)
                if weight != reference:
                    for masking in MASKINGS:
                        row[f"r2_{masking}_minus_reference"] = compare_sums(
                            sums[weight][masking].numpy(), sums[reference][masking].numpy(), subjects,
                            num=args.bootstrap, seed=seed,
                        )  # fmt: skip
                rows.append(row)
                print(f"seed {seed} {mask_input} weight {weight:g}: {seconds:.0f} s", flush=True)
    summary = {}
    for mask_input in args.mask_inputs:
        for weight in args.weights[1:]:
            chosen = [r for r in rows if r["mask_input"] == mask_input and r["consistency_weight"] == weight]
            for masking in MASKINGS:
                differences = [r[f"r2_{masking}_minus_reference"]["difference"] for r in chosen]
                summary[f"{mask_input}_w{weight:g}_minus_w{reference:g}_{masking}"] = float(np.mean(differences))
    command = "python -m benchmarks.consistency_study " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command, "recipe": RECIPE, "model": DEMO_MODEL, "rows": rows, "mean_over_seeds": summary}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print(
        "| seed | mask input | weight | per-ROI | whole-frame | forecast | clean change | vs weight 0 (whole-frame) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        d = r.get("r2_whole_frame_minus_reference")
        versus = f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else ""
        scores = " | ".join(f"{r[f'r2_{masking}']:.3f}" for masking in MASKINGS)
        change = r["clean_output_change"]
        print(f"| {r['seed']} | {r['mask_input']} | {r['consistency_weight']:g} | {scores} | {change:.3f} | {versus} |")


if __name__ == "__main__":
    main()
