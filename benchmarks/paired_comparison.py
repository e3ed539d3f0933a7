"""Paired comparisons between methods of one evaluation, from the `predictions.csv` that `mnemodyn evaluate`
writes: metric(a) - metric(b) with its 95 % interval and a calibrated p-value (`evaluation.statistics.
paired_comparison`). With site groups (a `group` column): the mean over sites of the per-site difference, a cluster
bootstrap over sites and a sign-flip test; without: the pooled difference over subjects and a paired permutation
test.

    python -m benchmarks.paired_comparison eval/abide-dx \\
        mnemodyn_correlation_probe:random_backbone_correlation mnemodyn_tangent_probe:fc_tangent
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mnemodyn_hf.evaluation.statistics import COMPARABLE_SCALE, paired_comparison, primary_metric


def compare(report_dir: Path, pairs: list[tuple[str, str]], num: int = 2000) -> list[dict]:
    report = json.loads((report_dir / "report.json").read_text())
    table = pd.read_csv(report_dir / "predictions.csv")
    metric_name, metric = primary_metric(report["task_type"])
    groups = table["group"].astype(str).to_numpy() if "group" in table else None
    rows = []
    for a, b in pairs:
        result = paired_comparison(metric, table["label"].to_numpy(), table[a].to_numpy(), table[b].to_numpy(),
                                   table["unit"].astype(str).to_numpy(), groups,
                                   scale=COMPARABLE_SCALE[metric_name], num=num)  # fmt: skip
        rows.append({"a": a, "b": b, "metric": metric_name, **result})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_dir", type=Path, help="an output folder of `mnemodyn evaluate`")
    parser.add_argument("pairs", nargs="+", help="METHOD_A:METHOD_B")
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args(argv)
    pairs = [tuple(pair.split(":")) for pair in args.pairs]
    print("| a | b | difference | 95 % CI | p | unit |\n|---|---|---|---|---|---|")
    for row in compare(args.report_dir, pairs, args.bootstrap):
        low, high = np.round(row["ci95"], 3)
        print(
            f"| {row['a']} | {row['b']} | {row['difference']:+.3f} | [{low:+.3f}, {high:+.3f}] | {row['p']:.3f} "
            f"| {row['num_units']} {row['unit']}s |"
        )


if __name__ == "__main__":
    main()
