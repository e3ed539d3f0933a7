"""Paired differences between methods of one evaluation: metric(a) - metric(b) on the same subjects, with a
subject-bootstrap 95 % interval and p-value, from the `predictions.csv` that `mnemodyn evaluate` writes.

    python -m benchmarks.paired_comparison eval/abide-dx \\
        mnemodyn_correlation_probe:random_backbone_correlation mnemodyn_tangent_probe:fc_tangent
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mnemodyn_hf.evaluation.statistics import paired_difference, primary_metric


def compare(report_dir: Path, pairs: list[tuple[str, str]], num: int = 2000) -> list[dict]:
    report = json.loads((report_dir / "report.json").read_text())
    table = pd.read_csv(report_dir / "predictions.csv")
    metric_name, metric = primary_metric(report["task_type"])
    rows = []
    for a, b in pairs:
        result = paired_difference(metric, table["label"].to_numpy(), table[a].to_numpy(), table[b].to_numpy(),
                                   table["unit"].astype(str).to_numpy(), num=num)  # fmt: skip
        rows.append({"a": a, "b": b, "metric": metric_name, **result})
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_dir", type=Path, help="an output folder of `mnemodyn evaluate`")
    parser.add_argument("pairs", nargs="+", help="METHOD_A:METHOD_B")
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args(argv)
    pairs = [tuple(pair.split(":")) for pair in args.pairs]
    print("| a | b | difference | 95 % CI | p |\n|---|---|---|---|---|")
    for row in compare(args.report_dir, pairs, args.bootstrap):
        low, high = np.round([row["ci95_low"], row["ci95_high"]], 3)
        print(f"| {row['a']} | {row['b']} | {row['difference']:+.3f} | [{low:+.3f}, {high:+.3f}] | {row['p']:.3f} |")


if __name__ == "__main__":
    main()
