"""What the backbone's layers do on held-out windows: per-layer update norms and two ablations.

For each `mnemodyn pretrain` model folder, on the windows of the subjects in neither list of its
`pretraining_subjects.json` (`held_out_windows`):

* **update norms**: for each layer l, ||h_l - h_(l-1)|| / ||h_(l-1)|| over every entry of every clean window (what
  downstream reads), h_0 the input;
* **operator ablation**: the wavelet operator of every layer replaced by the identity (the vector field times the
  path derivative passes to the output projection without being evolved in time), and **no backbone**: every
  layer's update set to 0 (the head reads the input as the backbone receives it). Each ablation's masked-reconstruction
  R^2 against the intact model's on the same masks, paired over subjects (`compare_sums`).

    python -m benchmarks.backbone_probe mask_study/token-0/model mask_study/interpolate-0/model \\
        --data ../shared/data/hcp_aal2 --json benchmarks/results/backbone_probe.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import torch

from mnemodyn_hf.data import load_hcp_aal2
from mnemodyn_hf.evaluation.reconstruction import MASKINGS, compare_sums, held_out_windows, model_fill, pooled_r2
from mnemodyn_hf.reconstruction_predictors import scored_sums


@contextlib.contextmanager
def ablated(model, kind: str):
    """The model with every layer's operator replaced by the identity (`"operator"`) or every layer's update set
    to zero (`"backbone"`); restored on exit."""
    layers = model.mnemodyn.layers
    saved = [(layer.operator.forward, layer.forward) for layer in layers]
    for layer in layers:
        if kind == "operator":
            layer.operator.forward = lambda velocity: velocity
        else:
            layer.forward = lambda hidden, *args, **kwargs: torch.zeros_like(hidden)
    try:
        yield model
    finally:
        for layer, (operator_forward, layer_forward) in zip(layers, saved):
            layer.operator.forward, layer.forward = operator_forward, layer_forward


@torch.no_grad()
def update_norms(model, values: torch.Tensor) -> list[float]:
    states = model.mnemodyn(values, output_hidden_states=True, return_dict=True).hidden_states
    return [float((after - before).norm() / before.norm()) for before, after in zip(states[:-1], states[1:])]


def probe(folder: Path, runs, seed: int, num: int) -> dict:
    data = held_out_windows(folder, runs)
    result = {"model": str(folder), "update_norms": update_norms(data.model, data.values), "maskings": {}}
    for masking in MASKINGS:
        hidden = data.masks(masking, seed)
        sums = {"intact": scored_sums(model_fill(data.model, data.values, hidden), data.values, hidden).numpy()}
        for kind in ("operator", "backbone"):
            with ablated(data.model, kind):
                fill = model_fill(data.model, data.values, hidden)
            sums[kind] = scored_sums(fill, data.values, hidden).numpy()
        result["maskings"][masking] = {name: pooled_r2(None, table) for name, table in sums.items()} | {
            f"{kind}_ablation_cost": compare_sums(sums["intact"], sums[kind], data.subjects, num=num, seed=seed)
            for kind in ("operator", "backbone")
        }
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--data", required=True, help="the hcp_aal2 folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    runs = load_hcp_aal2(args.data)
    results = [probe(folder, runs, args.seed, args.bootstrap) for folder in args.models]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
    print("| model | masking | intact | operator = identity | no backbone | intact - operator ablation [95 % CI] |")
    print("|---|---|---|---|---|---|")
    for r in results:
        for masking, row in r["maskings"].items():
            cost = row["operator_ablation_cost"]
            print(f"| {r['model']} | {masking} | {row['intact']:.3f} | {row['operator']:.3f} | {row['backbone']:.3f} | "
                  f"{cost['difference']:+.3f} [{cost['ci95'][0]:+.3f}, {cost['ci95'][1]:+.3f}] |")  # fmt: skip
    for r in results:
        print(r["model"], "update norms per layer:", ", ".join(f"{v:.3f}" for v in r["update_norms"]))


if __name__ == "__main__":
    main()
