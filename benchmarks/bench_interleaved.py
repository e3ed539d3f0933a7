"""Backbone step times of the implementations of bench_backbone.py, interleaved step by step in one process.

`python -m benchmarks --only backbone` times each implementation in its own process, one after the other, so load
from other processes that comes and goes lands on some implementations and not others. Here the models (same
weights) are built in one process and their steps alternate, round by round; each time is the best of `--rounds`,
so every implementation gets the same chances of a quiet moment, and the ratios hold on a shared machine. Memory is
not measured (bench_backbone.py does, per process).

    python -m benchmarks.bench_interleaved --batch 4 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.bench_backbone import IMPLEMENTATIONS, MODES, SIZES, build
from benchmarks.machine import machine_description, print_and_save
from mnemodyn_hf import field_contraction


def step_function(model: torch.nn.Module, x: torch.Tensor, mode: str) -> Callable[[], float | None]:
    """One forward (no grad) or one training step (MSE reconstruction, backward, fused AdamW), as bench_backbone.
    The training step returns the seconds its optimizer step and `zero_grad` took (bench_step_budget times them
    apart from the rest); the forward returns None."""
    if mode == "forward":
        model.eval()

        def forward() -> None:
            with torch.no_grad():
                model(x)

        return forward
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)

    def train() -> float:
        out = model(x)
        loss = torch.nn.functional.mse_loss((out if isinstance(out, torch.Tensor) else out.last_hidden_state), x)
        loss.backward()
        start = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    return train


def run(size: str = "released", batch: int = 4, frames: int = 490, rounds: int = 5, modes=MODES) -> dict:
    """Best seconds per (mode, implementation) over `rounds` rounds that each run every implementation once."""
    x = torch.randn(batch, frames, SIZES[size]["num_rois"], generator=torch.Generator().manual_seed(0))
    results, loads = {}, []
    for mode in modes:
        steps = {name: step_function(build(name, size, torch.device("cpu")), x, mode) for name in IMPLEMENTATIONS}
        for step in steps.values():
            step()  # warm-up (and the first-use timing of field_implementation="auto")
        best = dict.fromkeys(steps, float("inf"))
        for _ in range(rounds):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                best[name] = min(best[name], time.perf_counter() - start)
            loads.append(round(os.getloadavg()[0], 2))
        results[mode] = best
        del steps
    ratios = {
        mode: {
            "default_vs_literal": best["literal_reference_port"] / best["mnemodyn"],
            "eager_vs_literal": best["literal_reference_port"] / best["mnemodyn_eager"],
            "default_vs_eager": best["mnemodyn_eager"] / best["mnemodyn"],
        }
        for mode, best in results.items()
    }
    return {
        "benchmark": "backbone_interleaved",
        "size": size,
        "batch": batch,
        "frames": frames,
        "rounds": rounds,
        "seconds": results,
        "ratios": ratios,
        "field_choice": list(field_contraction._choices.values()),
        "load_average_per_round": loads,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = [
        "| mode | literal port s | eager s | default s | default vs port | eager vs port | default vs eager |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, best in report["seconds"].items():
        ratio = report["ratios"][mode]
        lines.append(
            f"| {mode} | {best['literal_reference_port']:.3f} | {best['mnemodyn_eager']:.3f} | "
            f"{best['mnemodyn']:.3f} | {ratio['default_vs_literal']:.2f}x | {ratio['eager_vs_literal']:.2f}x | "
            f"{ratio['default_vs_eager']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=490)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run(args.size, args.batch, args.frames, args.rounds, args.modes)
    print_and_save(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
