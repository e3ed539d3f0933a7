"""Training steps under the pretraining loop's process settings: glibc's defaults, `retain_freed_memory`
(training/allocator.py), and that with the set-up's objects frozen for the collector (`frozen_setup_objects`,
training/collector.py). Step time, minor page faults, system time, the collector's full collections and peak RSS,
each setting in its own process.

A step is bench_backbone's training step (forward, MSE reconstruction, backward, fused AdamW,
`zero_grad(set_to_none=True)`) of the default MnemoDyn; the first `--warmup` steps are not counted.

    python -m benchmarks.bench_allocator --batch 1 --steps 24 --json out.json
"""

from __future__ import annotations

import argparse
import gc
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
from mnemodyn_hf.training import allocator, collector

#: setting -> (retain freed memory, freeze the set-up's objects)
SETTINGS = {
    "default": ("0", "0"),
    "retain_freed_memory": ("1", "0"),
    "retain_freed_memory + frozen_setup_objects": ("1", "1"),
}


def steps_in_this_process(size: str, batch: int, steps: int, warmup: int) -> dict:
    """Run `steps` training steps here (after `retain_freed_memory` and inside `frozen_setup_objects`, which honour
    their variables); per counted step: seconds, minor faults, system seconds and full collections."""
    retained = allocator.retain_freed_memory()
    model = build("mnemodyn", size, torch.device("cpu")).train()
    x = torch.randn(batch, SIZES[size]["context_length"], SIZES[size]["num_rois"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    full_collections = []  # one entry per full collection started

    def count_full_collections(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            full_collections.append(phase)

    gc.callbacks.append(count_full_collections)
    rows = []
    try:
        with collector.frozen_setup_objects() as frozen:
            for index in range(steps):
                before, start, collections = (
                    resource.getrusage(resource.RUSAGE_SELF),
                    time.perf_counter(),
                    len(full_collections),
                )
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
                            "full_collections": len(full_collections) - collections,
                        }
                    )
    finally:
        gc.callbacks.remove(count_full_collections)
    return {
        "retained": retained,
        "frozen": frozen,
        "steps": rows,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def run(size: str = "released", batch: int = 1, steps: int = 24, warmup: int = 2) -> dict:
    """Every setting, each in a fresh process; means and best over the counted steps."""
    results = {}
    for setting, (retain, freeze) in SETTINGS.items():
        command = [sys.executable, "-m", "benchmarks.bench_allocator", "--worker", "--size", size]
        command += ["--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
        environment = {**os.environ, allocator.VARIABLE: retain, collector.VARIABLE: freeze}
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
        worker = json.loads(done.stdout.strip().splitlines()[-1])
        rows = worker["steps"]
        results[setting] = {
            **worker,
            "mean_seconds": statistics.mean(row["seconds"] for row in rows),
            "best_seconds": min(row["seconds"] for row in rows),
            "mean_minor_faults": statistics.mean(row["minor_faults"] for row in rows),
            "mean_system_seconds": statistics.mean(row["system_seconds"] for row in rows),
            "full_collections": sum(row["full_collections"] for row in rows),
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
        "| setting | applied (memory, collector) | mean step s | best step s | minor faults per step "
        "| system s per step | full collections | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting, result in report["results"].items():
        lines.append(
            f"| {setting} | {result['retained']}, {result['frozen']} | {result['mean_seconds']:.3f} | "
            f"{result['best_seconds']:.3f} | {result['mean_minor_faults']:,.0f} | "
            f"{result['mean_system_seconds']:.3f} | "
            f"{result['full_collections']} in {len(result['steps'])} steps | {result['max_rss_bytes'] / 2**20:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=24)
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
