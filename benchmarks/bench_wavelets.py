"""One wavelet level, native kernels against the tensor path, per level length and in a whole step.

Transforms: the released operator's levels (300 channels, signals of 490, 245, 123, 62 and 31 frames: the five DWT
levels of one 490-frame window, and the IDWTs that rebuild them), DWT and IDWT forward and forward + backward, the two
paths interleaved call by call; best of `--repeats`. Step: a batch-1 training step of the default model (as
bench_backbone.py) with the native transforms and with the tensor path forced, interleaved step by step in one
process; best and median of `--rounds` each.

    python -m benchmarks.bench_wavelets --json benchmarks/results/wavelets.json
"""

from __future__ import annotations

import functools
import time

import torch

from benchmarks.interleaved_settings import command_line, format_step_table, interleaved_training_steps
from benchmarks.machine import machine_description
from mnemodyn_hf import wavelets

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
    applies = wavelets._native_applies
    try:
        select = functools.partial(_select, applies=applies)
        return interleaved_training_steps(select, ("native", "tensor"), size, frames, rounds)
    finally:
        wavelets._native_applies = applies


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
    lines += ["", *format_step_table(report["step"], {"native": "native transforms", "tensor": "tensor path forced"})]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    command_line(__doc__, run, format_table, repeats=200, argv=argv)


if __name__ == "__main__":
    main()
