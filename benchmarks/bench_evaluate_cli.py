"""`mnemodyn evaluate` end to end, before and after a change, on ABIDE's 426 subjects with every method.

Each checkout (the current one, and `--before`: a worktree of an older commit, e.g. `git worktree add /tmp/before
08d8e67`) runs in its own Python process with its own package on `PYTHONPATH` (`--before-python`: the interpreter
of an environment the older code runs in, e.g. one with the transformers release it was written for):

1. it saves a 200-ROI backbone at TR 2 s with the architecture of docs/representations.md's recipe (random weights,
   seed 0) and a feature extractor whose robust-scaling statistics come from the KKI runs, no
   `pretraining_subjects.json` (so all 426 subjects are scored);
2. it saves abide_dev as a cohort folder and times `mnemodyn evaluate BACKBONE --cohort COHORT --label dx
   --task-type classification --groups site [--methods ...]` (wall time and peak RSS of the child process).

Then the per-method pooled ROC-AUCs of the two runs are compared. Pooled AUCs agree only where the fits are the
same: inner model selection is grouped by site after the change, by subject before, so with `--groups site` the
penalties (and the AUCs) may differ; `--split-5fold` runs the named task's site-stratified 5-fold split, whose inner
folds are by subject in both.

    python -m benchmarks.bench_evaluate_cli --data ../shared/data/abide_dev --before /tmp/before \\
        --json benchmarks/results/evaluate_cli.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.machine import machine_description, machine_line

PREPARE = """
import sys, torch, datasets
from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel
from mnemodyn_hf.data import load_abide_pcp
data, backbone, cohort = sys.argv[1:4]
torch.manual_seed(0)
config = MnemoDynConfig(num_rois=200, repetition_time=2.0, context_length=64, num_layers=2, projection_size=64,
                        latent_channels=32, wavelet_levels=3, num_coarse_layers=2)
MnemoDynModel(config).save_pretrained(backbone)
runs = load_abide_pcp(data, sites=("KKI",)).with_format("numpy")
tr = float(runs["tr"][0])
MnemoDynFeatureExtractor.for_rois(200, 2.0).fit(list(runs["bold"]), repetition_time=tr).save_pretrained(backbone)
load_abide_pcp(data).save_to_disk(cohort)
"""
EVALUATE = "import sys; from mnemodyn_hf.cli import main; main(sys.argv[1:])"


def run_checkout(tree: Path, python: str, work: Path, data: str, methods: list[str] | None, five_fold: bool) -> dict:
    """Prepare and time one checkout's `mnemodyn evaluate`; returns wall seconds, peak RSS and pooled values."""
    environment = {**os.environ, "PYTHONPATH": str(tree), "TQDM_DISABLE": "1"}
    backbone, cohort, output = work / "backbone", work / "cohort", work / "evaluation"
    subprocess.run([python, "-c", PREPARE, data, str(backbone), str(cohort)], env=environment, check=True)
    if five_fold:
        command = ["evaluate", str(backbone), "--task", "abide-dx", "--data", data, "--split", "site-stratified-5fold"]
    else:
        command = ["evaluate", str(backbone), "--cohort", str(cohort), "--label", "dx"]
        command += ["--task-type", "classification", "--groups", "site"]
    command += [*(["--methods", *methods] if methods else []), "-o", str(output)]
    started = time.perf_counter()
    process = subprocess.Popen([python, "-c", EVALUATE, *command], env=environment, cwd=tree)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak RSS
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"`mnemodyn evaluate` failed in {tree}")
    peak_kb = usage.ru_maxrss
    report = json.loads((output / "report.json").read_text())
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(peak_kb / 2**20, 2),
        "subjects": report["subjects"],
        "values": {name: result["value"] for name, result in report["methods"].items()},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the abide_dev folder")
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the older commit")
    parser.add_argument("--before-python", default=sys.executable, help="the interpreter for --before")
    parser.add_argument("--work", type=Path, default=Path("bench_evaluate_cli"))
    parser.add_argument("--methods", nargs="+", help="a subset of the methods (default: every method)")
    parser.add_argument("--split-5fold", action="store_true", help="the task's site-stratified 5-fold split")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    after_tree = Path(__file__).resolve().parents[1]
    runs = {}
    for name, tree, python in (
        ("before", args.before.resolve(), args.before_python),
        ("after", after_tree, sys.executable),
    ):
        print(f"{name}: {tree} ({python})", flush=True)
        runs[name] = run_checkout(tree, python, args.work / name, args.data, args.methods, args.split_5fold)
    commits = {
        name: subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True).stdout
        for name, tree in (("before", args.before), ("after", after_tree))
    }
    shared = sorted(set(runs["before"]["values"]) & set(runs["after"]["values"]))
    result = {
        "machine": machine_line(machine_description()),
        "load_average_end": os.getloadavg()[0],
        "split": "site-stratified-5fold" if args.split_5fold else "leave-site-out",
        "commits": {name: commit.strip() for name, commit in commits.items()},
        "before_python": args.before_python,
        "runs": runs,
        "max_abs_value_difference": {m: abs(runs["after"]["values"][m] - runs["before"]["values"][m]) for m in shared},
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print("| method | before | after | abs difference |\n|---|---:|---:|---:|")
    for m in shared:
        before, after = runs["before"]["values"][m], runs["after"]["values"][m]
        print(f"| {m} | {before:.4f} | {after:.4f} | {abs(after - before):.1e} |")
    print(f"wall time: before {runs['before']['seconds']} s, after {runs['after']['seconds']} s")


if __name__ == "__main__":
    main()
