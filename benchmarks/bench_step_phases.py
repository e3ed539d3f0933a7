"""Where a training step's time goes at each batch size: forward, backward, optimizer step (fused AdamW) and
`zero_grad`, for the literal reference port and the default MnemoDyn, interleaved round by round in one process.

A step's cost splits into a part that grows with the batch and a part that does not (the optimizer's pass over
every parameter, the weight gradients' writes). From two batch sizes B1 < B2 of the same run, each phase's
per-sequence cost is the slope (t(B2) - t(B1)) / (B2 - B1) and its batch-independent cost the intercept
t(B1) - B1 * slope. The ratio a step can reach over the port at the smallest batch is bounded by those parts.

    python -m benchmarks.bench_step_phases --batches 1 4 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.bench_backbone import SIZES, build
from benchmarks.machine import machine_description, print_and_save

PHASES = ("forward", "backward", "optimizer", "zero_grad")
COMPARED = ("literal_reference_port", "mnemodyn")


def _phased_step(model: torch.nn.Module, x: torch.Tensor):
    """A training step (MSE reconstruction, backward, fused AdamW, `zero_grad(set_to_none=True)`, as
    bench_backbone) that returns the seconds of each of its phases."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)

    def step() -> dict[str, float]:
        marks = [time.perf_counter()]
        out = model(x)
        loss = torch.nn.functional.mse_loss(out if isinstance(out, torch.Tensor) else out.last_hidden_state, x)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        marks.append(time.perf_counter())
        return {phase: end - start for phase, start, end in zip(PHASES, marks, marks[1:])}

    return step


def run(size: str = "released", batches=(1, 4), frames: int = 490, rounds: int = 5) -> dict:
    """Best seconds of each phase (over `rounds`) per implementation and batch, with slopes and intercepts."""
    seconds = {name: {} for name in COMPARED}
    for batch in batches:
        x = torch.randn(batch, frames, SIZES[size]["num_rois"], generator=torch.Generator().manual_seed(0))
        steps = {name: _phased_step(build(name, size, torch.device("cpu")), x) for name in COMPARED}
        for step in steps.values():
            step()  # warm-up (and the first-use timing of field_implementation="auto")
        best = {name: dict.fromkeys(PHASES, float("inf")) for name in COMPARED}
        for _ in range(rounds):
            for name, step in steps.items():
                for phase, value in step().items():
                    best[name][phase] = min(best[name][phase], value)
        for name in COMPARED:
            seconds[name][str(batch)] = {**best[name], "step": sum(best[name].values())}
        del steps
    return {
        "benchmark": "step_phases",
        "size": size,
        "frames": frames,
        "rounds": rounds,
        "seconds": seconds,
        "split": split_by_batch(seconds, batches[0], batches[-1]),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def split_by_batch(seconds: dict, small: int, large: int) -> dict:
    """Per implementation and phase: seconds per sequence (the slope between the two batches) and the batch-
    independent seconds (the intercept)."""
    split = {}
    for name, by_batch in seconds.items():
        split[name] = {}
        for phase in (*PHASES, "step"):
            low, high = by_batch[str(small)][phase], by_batch[str(large)][phase]
            slope = (high - low) / (large - small) if large > small else float("nan")
            split[name][phase] = {"per_sequence": slope, "fixed": low - small * slope}
    return split


def format_table(report: dict) -> str:
    lines = ["| implementation | batch | " + " | ".join(PHASES) + " | step (sum) |", "|---|---|" + "---|" * 5]
    for name, by_batch in report["seconds"].items():
        for batch, phases in by_batch.items():
            cells = " | ".join(f"{phases[phase]:.3f}" for phase in (*PHASES, "step"))
            lines.append(f"| {name} | {batch} | {cells} |")
    for name, phases in report["split"].items():
        cells = " | ".join(
            f"{phases[phase]['per_sequence']:.3f} + {phases[phase]['fixed']:.3f}" for phase in (*PHASES, "step")
        )
        lines.append(f"| {name} | per sequence + fixed | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batches", type=int, nargs=2, default=[1, 4], metavar=("SMALL", "LARGE"))
    parser.add_argument("--frames", type=int, default=490)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    if args.batches[0] >= args.batches[1]:
        parser.error("--batches takes two batch sizes, the smaller first (e.g. --batches 1 4)")
    report = run(args.size, tuple(args.batches), args.frames, args.rounds)
    print_and_save(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
