"""One wavelet level, native kernels against the tensor path, per level length and in a whole step.

Transforms: the released operator's levels (300 channels, signals of 490, 245, 123, 62 and 31 frames: the five DWT
levels of one 490-frame window, and the IDWTs that rebuild them), DWT and IDWT forward and forward + backward, the two
paths interleaved call by call; best of `--repeats`. Step: a batch-1 training step of the default model (as
bench_backbone.py) with the native transforms and with the tensor path forced, interleaved step by step in one
process; best and median of `--rounds` each.

    python -m benchmarks.bench_wavelets --json benchmarks/results/wavelets.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks.bench_backbone import SIZES, build
from benchmarks.machine import machine_description, print_and_save
from mnemodyn_hf import wavelets
from mnemodyn_hf.training.allocator import retain_freed_memory

RELEASED_LENGTHS = (490, 245, 123, 62, 31)


def _tensor_path(*tensors: torch.Tensor) -> bool:
    """Stands in for `wavelets._native_applies` to force the tensor path."""
    return False


def _select(path: str, applies) -> None:
    """Run the wavelets on `path` ("native": as `applies`, the module's own test, decides; "tensor": forced)."""
    wavelets._native_applies = applies if path == "native" else _tensor_path


def _calls(signal: torch.Tensor, analysis: torch.Tensor, synthesis: torch.Tensor) -> dict:
    """The four timed calls on one signal (with gradient) and its bands."""
    bands = [band.detach().requires_grad_() for band in wavelets.dwt(signal.detach(), analysis)]
    return {
        "dwt forward": lambda: wavelets.dwt(signal.detach(), analysis),
        "dwt forward + backward": lambda: torch.autograd.backward(wavelets.dwt(signal, analysis), bands),
        "idwt forward": lambda: wavelets.idwt(bands[0].detach(), bands[1].detach(), synthesis),
        "idwt forward + backward": lambda: wavelets.idwt(*bands, synthesis).sum().backward(),
    }


def transforms(lengths=RELEASED_LENGTHS, channels=300, wavelet="db2", repeats=200) -> list:
    """Best seconds per (transform, length) of the native kernels and of the tensor path."""
    analysis, synthesis = wavelets.analysis_filter_bank(wavelet), wavelets.synthesis_filter_bank(wavelet)
    generator = torch.Generator().manual_seed(0)
    applies = wavelets._native_applies
    results = []
    try:
        for length in lengths:
            signal = torch.randn(1, channels, length, generator=generator, requires_grad=True)
            for name, call in _calls(signal, analysis, synthesis).items():
                best = {"native": float("inf"), "tensor": float("inf")}
                for repeat in range(repeats + 1):
                    for path in best:
                        _select(path, applies)
                        start = time.perf_counter()
                        call()
                        elapsed = time.perf_counter() - start
                        best[path] = min(best[path], elapsed) if repeat else best[path]  # the first is a warm-up
                results.append({"transform": name, "length": length, "seconds": best})
    finally:
        wavelets._native_applies = applies
    return results


def step(size: str = "released", frames: int = 490, rounds: int = 8) -> dict:
    """A batch-1 training step with the native transforms and with the tensor path forced, interleaved."""
    model = build("mnemodyn", size, torch.device("cpu")).train()
    x = torch.randn(1, frames, SIZES[size]["num_rois"], generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    applies = wavelets._native_applies

    def train(path: str) -> float:
        _select(path, applies)
        start = time.perf_counter()
        torch.nn.functional.mse_loss(model(x).last_hidden_state, x).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    retain_freed_memory()  # as the pretraining loop
    try:
        for path in ("native", "tensor", "native"):  # warm-up, and the other kernels' first-use timings
            train(path)
        seconds = {"native": [], "tensor": []}
        for _ in range(rounds):
            for path, times in seconds.items():
                times.append(train(path))
    finally:
        wavelets._native_applies = applies
    return {
        "rounds": rounds,
        "seconds": seconds,
        "best": {path: min(times) for path, times in seconds.items()},
        "median": {path: statistics.median(times) for path, times in seconds.items()},
    }


def run(size: str = "released", repeats: int = 200, rounds: int = 8) -> dict:
    shapes = {} if size == "released" else {"lengths": (64, 32), "channels": 12}
    return {
        "benchmark": "wavelets",
        "transforms": transforms(repeats=repeats, **shapes),
        "step": step(size=size, frames=490 if size == "released" else 64, rounds=rounds),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = ["| transform | length | tensor path us | native us | tensor / native |", "|---|---|---|---|---|"]
    for row in report["transforms"]:
        tensor, native = row["seconds"]["tensor"], row["seconds"]["native"]
        times = f"{tensor * 1e6:.0f} | {native * 1e6:.0f} | {tensor / native:.2f}x"
        lines.append(f"| {row['transform']} | {row['length']} | {times} |")
    step_report = report["step"]
    best, median = step_report["best"], step_report["median"]
    lines += [
        "",
        f"| batch-1 training step ({step_report['rounds']} interleaved rounds) | best s | median s |",
        "|---|---|---|",
        f"| native transforms | {best['native']:.3f} | {median['native']:.3f} |",
        f"| tensor path forced | {best['tensor']:.3f} | {median['tensor']:.3f} |",
        f"| tensor / native | {best['tensor'] / best['native']:.2f}x | {median['tensor'] / median['native']:.2f}x |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run(args.size, args.repeats, args.rounds)
    print_and_save(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
