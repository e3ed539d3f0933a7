"""Cohort-scale embedding throughput: what `mnemodyn embed` / `mnemodyn evaluate` spend on the backbone.

`evaluation.embeddings.embed` (the function both commands call) embeds a cohort of `runs` recordings of 300-680
frames x 450 ROIs (random values: a speed benchmark, shapes only) with the released-size backbone, at each batch
size in a fresh process; reported: runs/s, frames/s and the peak RSS above the level before the call (the cohort's
own arrays excluded). Variable lengths exercise the padding and `attention_mask` path.

    python -m benchmarks.bench_cohort_embedding                 # 1,000 runs, batch 8 and 32 (~6 min on 2 cores)
    python -m benchmarks.bench_cohort_embedding --runs 20 --batches 4 --size tiny
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_backbone import SIZES, PeakMemory, build, machine_description
from mnemodyn_hf.evaluation.embeddings import embed

FRAMES = (300, 680)


def measure(size: str, runs: int, batch: int) -> dict:
    rng = np.random.default_rng(0)
    rois = SIZES[size]["num_rois"]
    lengths = rng.integers(*FRAMES, size=runs)
    series = [rng.standard_normal((int(n), rois), dtype=np.float32) for n in lengths]
    model = build("mnemodyn", size, torch.device("cpu")).eval()
    start = time.perf_counter()
    with PeakMemory(torch.device("cpu")) as memory:
        embeddings = embed(model, series, batch_size=batch)
    seconds = time.perf_counter() - start
    return {
        "runs": runs,
        "batch": batch,
        "frames": int(lengths.sum()),
        "seconds": seconds,
        "runs_per_second": runs / seconds,
        "frames_per_second": float(lengths.sum()) / seconds,
        "peak_memory_bytes": memory.above_base,
        "embedding_shape": list(embeddings.shape),
    }


def run(size: str = "released", runs: int = 1000, batches=(8, 32)) -> dict:
    rows = []
    for batch in batches:
        command = [sys.executable, "-m", "benchmarks.bench_cohort_embedding", "--worker", "--size", size]
        command += ["--runs", str(runs), "--batches", str(batch)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "benchmark": "cohort_embedding",
        "size": size,
        "rows": rows,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = [
        "| runs | batch | s | runs / s | frames / s | peak memory above the cohort (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['runs']:,} | {r['batch']} | {r['seconds']:.1f} | {r['runs_per_second']:.2f} | "
            f"{r['frames_per_second']:,.0f} | {r['peak_memory_bytes'] / 2**20:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.size, args.runs, args.batches[0])))
        return
    report = run(args.size, args.runs, args.batches)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
