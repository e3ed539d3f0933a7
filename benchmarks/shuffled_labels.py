"""Calibration under no signal: labels shuffled within sites, leave-site-out, one linear read-out.

For each of `--shuffles` within-site shuffles of the label (seeds 0, 1, ...), the harness scores `--method` with
its site-unit statistics and a `--permutations` label-permutation null (`evaluation.permutation`), and records
whether the cluster-bootstrap 95 % interval over sites holds 0.5 and whether the permutation test calls the
shuffled labels above chance at alpha 0.05. The unshuffled labels are scored the same way as the positive control.

    python -m benchmarks.shuffled_labels --data ../shared/data/abide_dev --shuffles 10 --permutations 19 \\
        --json benchmarks/results/shuffled_labels.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_description
from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel
from mnemodyn_hf.data import load_abide_pcp
from mnemodyn_hf.evaluation import EvaluationSettings
from mnemodyn_hf.evaluation.harness import evaluate_backbone


def shuffled_within_sites(cohort, label: str, seed: int):
    """The cohort with `label` permuted among the rows of each site."""
    rng = np.random.default_rng(seed)
    sites, values = np.asarray(cohort["site"]), np.asarray(cohort[label])
    for site in np.unique(sites):
        rows = np.flatnonzero(sites == site)
        values[rows] = rng.permutation(values[rows])
    return cohort.remove_columns(label).add_column(label, values.tolist())


def score(cohort, backbone: Path, method: str, permutations: int) -> dict:
    settings = EvaluationSettings(methods=(method,), num_bootstrap=2000, label_permutations=permutations)
    report, _ = evaluate_backbone(
        cohort, label="dx", task_type="classification", backbone=backbone, split="leave-site-out", settings=settings
    )
    result = report["methods"][method]
    low, high = result["ci95"]
    null = result["permutation_null"]
    return {
        "estimate": result["estimate"],
        "ci95": [low, high],
        "ci_holds_chance": bool(low <= 0.5 <= high),
        "p_vs_chance": null["p_vs_chance"],
        "null_ci95": null["null_ci95"],
        "called_above_chance": bool(null["p_vs_chance"] <= 0.05),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the abide_dev folder")
    parser.add_argument("--method", default="fc_pearson")
    parser.add_argument("--shuffles", type=int, default=10)
    parser.add_argument("--permutations", type=int, default=19)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    backbone = Path(tempfile.mkdtemp()) / "backbone"  # FC read-outs ignore it; the harness needs a folder
    torch.manual_seed(0)
    MnemoDynModel(MnemoDynConfig(num_rois=200, repetition_time=2.0, num_layers=1)).save_pretrained(backbone)
    MnemoDynFeatureExtractor.for_rois(200, 2.0).save_pretrained(backbone)
    cohort = load_abide_pcp(args.data)
    rows = {"real labels": score(cohort, backbone, args.method, args.permutations)}
    for seed in range(args.shuffles):
        rows[f"shuffle {seed}"] = score(
            shuffled_within_sites(cohort, "dx", seed), backbone, args.method, args.permutations
        )
        print(seed, rows[f"shuffle {seed}"], flush=True)
    shuffles = [row for name, row in rows.items() if name.startswith("shuffle")]
    result = {
        "method": args.method,
        "permutations": args.permutations,
        "machine": machine_description(),
        "rows": rows,
        "shuffles_whose_ci_holds_chance": sum(row["ci_holds_chance"] for row in shuffles),
        "shuffles_called_above_chance": sum(row["called_above_chance"] for row in shuffles),
        "shuffles": len(shuffles),
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print("| labels | estimate (mean over sites) | site-bootstrap 95 % CI | holds 0.5 | permutation p | null 95 % |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['estimate']:.3f} | [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}] | "
            f"{'yes' if row['ci_holds_chance'] else 'no'} | {row['p_vs_chance']:.2f} | "
            f"[{row['null_ci95'][0]:.3f}, {row['null_ci95'][1]:.3f}] |"
        )


if __name__ == "__main__":
    main()
