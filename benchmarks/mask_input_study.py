"""Mask-blind against mask-aware pretraining on the 18 HCP subjects at TR 0.72 s, the same recipe and seeds.

For each seed and each `--mask-input` (token, interpolate, interpolate_embedding), pretrain the demo's model on
`load_hcp_aal2(DATA)` (13 train / 2 validation / 3 test subjects for seed 0; the split is drawn from the seed) and
score masked reconstruction of the test subjects (`evaluate_reconstruction`). Per seed, each mask-aware model is
compared with the token model on the same windows and masks (`compare_sums`: paired over subjects), and over all
seeds together (the unit is a seed's test subject).

    python -m benchmarks.mask_input_study --data ../shared/data/hcp_aal2 --work mask_study --seeds 0 1 2 \\
        --json benchmarks/results/mask_input_study.json
    # the recommended recipe's schedule (training.recipe), token against interpolate
    python -m benchmarks.mask_input_study --data ../shared/data/hcp_aal2 --work mask_study_recipe \\
        --mask-inputs token interpolate --max-steps 1000 --warmup-steps 50 \\
        --json benchmarks/results/mask_input_study_recipe.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mnemodyn_hf.apps.demo import DEMO_MODEL
from mnemodyn_hf.configuration_mnemodyn import MASK_INPUTS
from mnemodyn_hf.data import load_hcp_aal2
from mnemodyn_hf.evaluation.reconstruction import MASKINGS, compare_sums, held_out_windows, model_fill, pooled_r2
from mnemodyn_hf.reconstruction_predictors import scored_sums

from .hcp_pretraining import pretrain_on_hcp

RECIPE = dict(
    window_frames=256, window_stride=128, per_device_batch_size=8, max_steps=150, learning_rate=3e-3,
    warmup_steps=20, mask_span_frames=8, mask_ratio=0.5, mask_layout="mixed", report_to="csv",
    validation_fraction=0.12, test_fraction=0.17, eval_every=150, checkpoint_every=150, keep_checkpoints=1,
)  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the hcp_aal2 folder")
    parser.add_argument("--work", type=Path, default=Path("mask_input_study"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--mask-inputs", nargs="+", default=list(MASK_INPUTS), choices=MASK_INPUTS)
    parser.add_argument("--max-steps", type=int, help="steps instead of the demo's 150 (1000: the recipe's)")
    parser.add_argument("--warmup-steps", type=int)
    args = parser.parse_args(argv)
    if args.mask_inputs[0] != "token":
        parser.error("--mask-inputs starts with token: every other input is compared with it")
    recipe = RECIPE | {k: v for k, v in (("max_steps", args.max_steps), ("warmup_steps", args.warmup_steps)) if v}
    if args.max_steps:
        recipe |= {"eval_every": args.max_steps, "checkpoint_every": args.max_steps}
    args.work.mkdir(parents=True, exist_ok=True)
    runs = load_hcp_aal2(args.data)
    rows, pooled, units = [], {}, {}
    for seed in args.seeds:
        sums, test_subjects = {}, None
        for mask_input in args.mask_inputs:
            started = time.perf_counter()
            torch.manual_seed(seed)
            folder = pretrain_on_hcp(
                args.data, args.work / f"{mask_input}-{seed}", DEMO_MODEL, mask_input=mask_input, seed=seed, **recipe
            )
            data = held_out_windows(folder, runs)
            test_subjects = sorted(set(data.subjects))
            sums[mask_input] = {}
            for masking in MASKINGS:
                hidden = data.masks(masking, seed)
                fill = model_fill(data.model, data.values, hidden)
                sums[mask_input][masking] = scored_sums(fill, data.values, hidden).numpy()
            print(f"seed {seed} {mask_input}: {time.perf_counter() - started:.0f} s", flush=True)
        for masking in MASKINGS:
            row = {"seed": seed, "masking": masking, "test_subjects": test_subjects}
            for mask_input in args.mask_inputs:
                row[mask_input] = pooled_r2(None, sums[mask_input][masking])
                pooled.setdefault((mask_input, masking), []).append(sums[mask_input][masking])
            for mask_input in args.mask_inputs[1:]:
                row[f"{mask_input}_minus_token"] = compare_sums(
                    sums[mask_input][masking], sums["token"][masking], data.subjects, num=args.bootstrap, seed=seed
                )
            rows.append(row)
            units.setdefault(masking, []).extend(f"{seed}:{subject}" for subject in data.subjects)
    over_seeds = {}  # every seed's test windows together; the unit is (seed, subject)
    for mask_input in args.mask_inputs[1:]:
        for masking in MASKINGS:
            a, b = (np.concatenate(pooled[(m, masking)]) for m in (mask_input, "token"))
            over_seeds[f"{mask_input}_minus_token_{masking}"] = compare_sums(
                a, b, np.array(units[masking]), num=args.bootstrap
            )
    result = {"recipe": recipe, "model": DEMO_MODEL, "rows": rows, "over_seeds": over_seeds}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    others = args.mask_inputs[1:]
    print(f"| seed | masking | {' | '.join(args.mask_inputs)} | {' | '.join(f'{m} - token' for m in others)} |")
    print("|---|---|" + "---|" * (len(args.mask_inputs) + len(others)))
    for r in rows:
        cells = [f"{r[m]:.3f}" for m in args.mask_inputs]
        for m in others:
            d = r[f"{m}_minus_token"]
            cells.append(f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
        print(f"| {r['seed']} | {r['masking']} | {' | '.join(cells)} |")
    for name, d in over_seeds.items():
        print(f"all seeds, {name}: {d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}], p {d['p']:.3f}")


if __name__ == "__main__":
    main()
