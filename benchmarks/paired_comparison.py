"""Paired comparisons between methods of one evaluation, from the `predictions.csv` that `mnemodyn evaluate`
writes: metric(a) - metric(b) with its 95 % interval and a calibrated p-value (`evaluation.statistics.
paired_comparison`). With site groups (a `group` column): the mean over sites of the per-site difference, a cluster
bootstrap over sites and a sign-flip test; without: the pooled difference over subjects and a paired permutation
test.

    python -m benchmarks.paired_comparison eval/abide-dx \\
        mnemodyn_correlation_probe:random_backbone_correlation mnemodyn_tangent_probe:fc_tangent

Two backbones evaluated on the same cohort and folds: `--other DIR` adds the methods of a second report as
`other:METHOD` (rows matched on unit and fold), e.g. `mnemodyn_tangent_probe:other:mnemodyn_tangent_probe`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mnemodyn_hf.evaluation.statistics import COMPARABLE_SCALE, paired_comparison, primary_metric


def compare(report_dir: Path, pairs: list[tuple[str, str]], num: int = 2000, other: Path | None = None) -> list[dict]:
    report = json.loads((report_dir / "report.json").read_text())
    table = pd.read_csv(report_dir / "predictions.csv")
    if other is not None:
        second = pd.read_csv(other / "predictions.csv")
        keys = ["unit", "fold"]
        methods = [c for c in second.columns if c not in {*keys, "group", "label"}]
        merged = table.merge(second[keys + methods].rename(columns={m: f"other:{m}" for m in methods}), on=keys)
        if len(merged) != len(table) or len(merged) != len(second):
            raise ValueError(f"{report_dir} and {other} do not score the same units and folds; compare reports of "
                             "one cohort and split.")  # fmt: skip
        table = merged
    metric_name, metric = primary_metric(report["task_type"])
    groups = table["group"].astype(str).to_numpy() if "group" in table else None
    rows = []
    for a, b in pairs:
        result = paired_comparison(metric, table["label"].to_numpy(), table[a].to_numpy(), table[b].to_numpy(),
                                   table["unit"].astype(str).to_numpy(), groups,
                                   scale=COMPARABLE_SCALE[metric_name], num=num)  # fmt: skip
        rows.append({"a": a, "b": b, "metric": metric_name, **result})
    return rows


def _pair(text: str) -> tuple[str, str]:
    """'a:b', 'a:other:b', 'other:a:b' -> the two method names (an `other:` prefix stays with its method)."""
    parts, names = text.split(":"), []
    while parts:
        names.append(":".join(parts[:2]) if parts[0] == "other" else parts[0])
        parts = parts[2:] if parts[0] == "other" else parts[1:]
    if len(names) != 2:
        raise SystemExit(f"{text!r}: give METHOD_A:METHOD_B")
    return names[0], names[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report_dir", type=Path, help="an output folder of `mnemodyn evaluate`")
    parser.add_argument("pairs", nargs="+", help="METHOD_A:METHOD_B (other:METHOD for a method of --other)")
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--other", type=Path, help="a second report folder of the same cohort and split")
    args = parser.parse_args(argv)
    pairs = [_pair(pair) for pair in args.pairs]
    print("| a | b | difference | 95 % CI | p | unit |\n|---|---|---|---|---|---|")
    for row in compare(args.report_dir, pairs, args.bootstrap, args.other):
        low, high = np.round(row["ci95"], 3)
        print(
            f"| {row['a']} | {row['b']} | {row['difference']:+.3f} | [{low:+.3f}, {high:+.3f}] | {row['p']:.3f} "
            f"| {row['num_units']} {row['unit']}s |"
        )


if __name__ == "__main__":
    main()
