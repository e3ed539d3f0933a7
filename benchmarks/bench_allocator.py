"""Training steps with and without `retain_freed_memory` (training/allocator.py): step time, minor page faults,
system time and peak RSS, each setting in its own process.

A step is bench_backbone's training step (forward, MSE reconstruction, backward, fused AdamW,
`zero_grad(set_to_none=True)`) of the default MnemoDyn; the first `--warmup` steps are not counted.

    python -m benchmarks.bench_allocator --batch 1 --steps 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.bench_backbone import SIZES, build
from benchmarks.machine import machine_description, print_and_save
from mnemodyn_hf.training.allocator import VARIABLE, retain_freed_memory


def steps_in_this_process(size: str, batch: int, steps: int, warmup: int) -> dict:
    """Run `steps` training steps here (after `retain_freed_memory`, which honours its variable); per counted step:
    seconds, minor faults and system seconds."""
    retained = retain_freed_memory()
    model = build("mnemodyn", size, torch.device("cpu")).train()
    x = torch.randn(batch, SIZES[size]["context_length"], SIZES[size]["num_rois"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    rows = []
    for index in range(steps):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x).last_hidden_state, x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        after = resource.getrusage(resource.RUSAGE_SELF)
        if index >= warmup:
            rows.append(
                {
                    "seconds": time.perf_counter() - start,
                    "minor_faults": after.ru_minflt - before.ru_minflt,
                    "system_seconds": after.ru_stime - before.ru_stime,
                }
            )
    return {
        "retained": retained,
        "steps": rows,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def run(size: str = "released", batch: int = 1, steps: int = 8, warmup: int = 2) -> dict:
    """Both settings, each in a fresh process; means and best over the counted steps."""
    results = {}
    for setting, value in (("default", "0"), ("retain_freed_memory", "1")):
        command = [sys.executable, "-m", "benchmarks.bench_allocator", "--worker", "--size", size]
        command += ["--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, VARIABLE: value})
        worker = json.loads(done.stdout.strip().splitlines()[-1])
        rows = worker["steps"]
        results[setting] = {
            **worker,
            "mean_seconds": statistics.mean(row["seconds"] for row in rows),
            "best_seconds": min(row["seconds"] for row in rows),
            "mean_minor_faults": statistics.mean(row["minor_faults"] for row in rows),
            "mean_system_seconds": statistics.mean(row["system_seconds"] for row in rows),
        }
    return {
        "benchmark": "allocator",
        "size": size,
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "results": results,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = [
        "| setting | applied | mean step s | best step s | minor faults per step | system s per step | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, result in report["results"].items():
        lines.append(
            f"| {setting} | {result['retained']} | {result['mean_seconds']:.3f} | {result['best_seconds']:.3f} | "
            f"{result['mean_minor_faults']:,.0f} | {result['mean_system_seconds']:.3f} | "
            f"{result['max_rss_bytes'] / 2**20:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup (the warm-up steps are not counted)")
    if args.worker:
        print(json.dumps(steps_in_this_process(args.size, args.batch, args.steps, args.warmup)))
        return
    report = run(args.size, args.batch, args.steps, args.warmup)
    print_and_save(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
