"""A batch-1 training step of the default model under two settings of one switch, interleaved step by step.

The kernel benchmarks (bench_region_products.py, bench_wavelets.py) compare a native path with torch's inside a
whole step: one model and optimizer, the switch flipped before every step, so both settings meet the same moments of
a shared machine. The step is bench_interleaved.py's (MSE reconstruction, backward, fused AdamW), with freed memory
kept in the process as the pretraining loop keeps it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.bench_backbone import SIZES, build
from benchmarks.bench_interleaved import step_function
from benchmarks.machine import print_and_save
from mnemodyn_hf.training.allocator import retain_freed_memory


def interleaved_training_steps(
    select: Callable[[str], None], settings: tuple[str, str], size: str = "released", frames: int = 490, rounds: int = 8
) -> dict:
    """Seconds of `rounds` steps per setting (`select(setting)` applies one), after a warm-up of first, second,
    first (the first-use timings of the kernels happen there); best and median of each."""
    x = torch.randn(1, frames, SIZES[size]["num_rois"], generator=torch.Generator().manual_seed(0))
    train = step_function(build("mnemodyn", size, torch.device("cpu")), x, "train_step")
    retain_freed_memory()

    def timed(setting: str) -> float:
        select(setting)
        start = time.perf_counter()
        train()
        return time.perf_counter() - start

    for setting in (*settings, settings[0]):
        timed(setting)
    seconds = {setting: [] for setting in settings}
    for _ in range(rounds):
        for setting, times in seconds.items():
            times.append(timed(setting))
    return {
        "rounds": rounds,
        "seconds": seconds,
        "best": {setting: min(times) for setting, times in seconds.items()},
        "median": {setting: statistics.median(times) for setting, times in seconds.items()},
    }


def command_line(
    description: str,
    run: Callable[[str, int, int], dict],
    format_table: Callable[[dict], str],
    repeats: int,
    argv: list[str] | None = None,
) -> None:
    """The kernel benchmarks' command line: `--size`, `--repeats` (per call, default `repeats`), `--rounds` (of the
    interleaved step) and `--json`; runs `run(size, repeats, rounds)` and prints and saves its report."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run(args.size, args.repeats, args.rounds)
    print_and_save(report, format_table(report), args.json)


def format_step_table(report: dict, labels: dict[str, str]) -> list[str]:
    """Markdown rows for an `interleaved_training_steps` report: one per setting (named by `labels`), then the
    second setting's times over the first's."""
    best, median = report["best"], report["median"]
    first, second = labels
    lines = [
        f"| batch-1 training step ({report['rounds']} interleaved rounds) | best s | median s |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {best[setting]:.3f} | {median[setting]:.3f} |" for setting, label in labels.items()]
    ratio = f"{best[second] / best[first]:.2f}x | {median[second] / median[first]:.2f}x"
    lines.append(f"| {second} / {first} | {ratio} |")
    return lines
