"""Choose the HCP pretraining recipe on validation subjects only: train a few candidate recipes on the same split of
the 18 HCP subjects (seed 0: 13 train / 2 validation / 3 test) and score each candidate's masked reconstruction on
the 2 validation subjects, per masking. The test subjects are not read here; the chosen recipe is scored on them
once, afterwards, with `mnemodyn evaluate MODEL --task hcp-aal2-reconstruction`.

    python -m benchmarks.hcp_recipe_study --data ../shared/data/hcp_aal2 --work hcp_recipes \\
        --json benchmarks/results/hcp_recipe_study.json

The rule, fixed before the runs: the candidate with the highest mean of its whole-frame and forecast validation R^2
(the maskings where the linear VAR anchor leads) is the recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from mnemodyn_hf.apps.demo import DEMO_MODEL
from mnemodyn_hf.data import load_hcp_aal2
from mnemodyn_hf.evaluation.reconstruction import MASKINGS, held_out_windows, model_fill
from mnemodyn_hf.reconstruction_predictors import r_squared_from_sums, scored_sums

from .hcp_pretraining import pretrain_on_hcp

BASE = dict(
    window_frames=256, window_stride=128, per_device_batch_size=8, learning_rate=3e-3, mask_span_frames=8,
    mask_ratio=0.5, mask_layout="mixed", report_to="csv", validation_fraction=0.12, test_fraction=0.17,
    keep_checkpoints=1, seed=0,
)  # fmt: skip
WIDE_MODEL = {**DEMO_MODEL, "projection_size": 128, "latent_channels": 64}
#: name -> (pretraining options over BASE, model config)
CANDIDATES = {
    "demo_150": (dict(max_steps=150, warmup_steps=20, mask_input="token"), DEMO_MODEL),
    "token_1000": (dict(max_steps=1000, warmup_steps=50, mask_input="token"), DEMO_MODEL),
    "interpolate_1000": (dict(max_steps=1000, warmup_steps=50, mask_input="interpolate"), DEMO_MODEL),
    "wide_token_1000": (dict(max_steps=1000, warmup_steps=50, mask_input="token"), WIDE_MODEL),
}
SELECTION_MASKINGS = ("whole_frame", "forecast")


def train(work: Path, data: str, name: str) -> Path:
    options, model = CANDIDATES[name]
    steps = options["max_steps"]
    return pretrain_on_hcp(data, work / name, model, eval_every=steps, checkpoint_every=steps, **BASE, **options)


def validation_scores(folder: Path, runs) -> dict[str, float]:
    """The model's pooled R^2 per masking on its validation subjects' windows (masks of seed 0)."""
    data = held_out_windows(folder, runs)
    scores = {}
    for masking in MASKINGS:
        hidden = data.validation_masks(masking, 0)
        fill = model_fill(data.model, data.validation_values, hidden)
        scores[masking] = r_squared_from_sums(scored_sums(fill, data.validation_values, hidden).sum(0))
    return scores | {"validation_subjects": data.validation_subjects}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the hcp_aal2 folder")
    parser.add_argument("--work", type=Path, default=Path("hcp_recipes"))
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    runs = load_hcp_aal2(args.data)
    rows = {}
    for name in args.candidates:
        started = time.perf_counter()
        folder = train(args.work, args.data, name)
        seconds = time.perf_counter() - started
        rows[name] = validation_scores(folder, runs) | {"train_seconds": round(seconds, 1)}
        rows[name]["selection_score"] = float(np.mean([rows[name][m] for m in SELECTION_MASKINGS]))
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[name].items()}, flush=True)
    chosen = max(rows, key=lambda name: rows[name]["selection_score"])
    result = {"base": BASE, "candidates": {n: list(CANDIDATES[n]) for n in args.candidates}, "validation": rows,
              "rule": f"highest mean validation R^2 over {SELECTION_MASKINGS}", "chosen": chosen}  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print("| candidate | per-ROI | whole-frame | forecast | train s |\n|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['per_roi']:.3f} | {row['whole_frame']:.3f} | {row['forecast']:.3f} | "
              f"{row['train_seconds']:.0f} |")  # fmt: skip
    print(f"chosen: {chosen}")


if __name__ == "__main__":
    main()
