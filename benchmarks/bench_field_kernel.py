"""The fused field kernel alone, per `-march` target and source version: forward and backward of one layer.

Each (source, march) pair is compiled with the loader's flags (`native_kernels.compile_flags`, `-march` replaced)
into a temporary directory and called through ctypes on the same inputs, at the released layer shape (bottleneck 3,
300 channels, 450 ROIs) for `--frames` frames. The pairs are interleaved, call by call, and each time is the best of
`--repeats`, so load from other processes hits every pair alike. `--source-rev` adds the kernel source of another git
revision (e.g. the one before a change) beside the working tree's.

    python -m benchmarks.bench_field_kernel --march native x86-64-v3 --source-rev HEAD~1 --threads 1
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.machine import machine_description, print_and_save
from mnemodyn_hf import field_contraction, native_kernels

ROOT = Path(__file__).resolve().parents[1]


def _library(source: Path, march: str, directory: Path, name: str) -> ctypes.CDLL:
    flags = [f"-march={march}" if flag.startswith("-march=") else flag for flag in native_kernels.compile_flags()]
    target = directory / f"{name}.so"
    others = [str(path) for path in native_kernels.SOURCES[1:]]  # the library's other kernels, as in the working tree
    include = f"-I{native_kernels.KERNELS}"  # vector.h for a source written outside kernels/ (--source-rev)
    subprocess.run([native_kernels._compiler(), *flags, include, str(source), *others, "-o", str(target)], check=True)
    return native_kernels._declare(ctypes.CDLL(str(target)))


def run(
    marches=("native", "x86-64-v3"),
    source_rev: str | None = None,
    frames: int = 490,
    threads: int = 1,
    repeats: int = 10,
    bottleneck: int = 3,
    channels: int = 300,
    rois: int = 450,
) -> dict:
    """Best forward and backward seconds of every (source, march) pair, interleaved; errors against float64."""
    generator = torch.Generator().manual_seed(0)
    code = torch.randn(frames, bottleneck, generator=generator)
    derivative = torch.randn(frames, rois, generator=generator)
    weight = torch.randn(bottleneck, channels, rois, generator=generator) * 0.3
    bias = torch.randn(channels, rois, generator=generator) * 0.1
    grad = torch.randn(frames, channels, generator=generator)
    pre = torch.einsum("nk,kcr->ncr", code.double(), weight.double()) + bias.double()
    exact = torch.einsum("ncr,nr->nc", pre.tanh(), derivative.double())
    # the ROI axis zero-padded as the package pads it (the kernel runs every ROI in vector lanes; padding adds nothing)
    padding = (0, -rois % field_contraction._ROI_PADDING)
    derivative, weight, bias = (torch.nn.functional.pad(t, padding).contiguous() for t in (derivative, weight, bias))
    shape = (frames, bottleneck, channels, derivative.shape[1], threads)
    with tempfile.TemporaryDirectory() as folder:
        sources = {"working tree": native_kernels.SOURCES[0]}  # field_contraction.c alone
        if source_rev:
            old = Path(folder) / "old.c"
            old.write_text(
                subprocess.run(
                    ["git", "show", f"{source_rev}:mnemodyn_hf/kernels/field_contraction.c"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            sources[source_rev] = old
        pairs = {
            (name, march): _library(path, march, Path(folder), f"k{i}")
            for i, ((name, path), march) in enumerate((s, m) for s in sources.items() for m in marches)
        }

        def forward(library) -> torch.Tensor:
            velocity = torch.empty(frames, channels)
            tensors = (code, derivative, weight, bias, velocity)
            library.mnemodyn_tanh_field_forward(*(t.data_ptr() for t in tensors), *shape)
            return velocity

        def backward(library, derivative_gradient: bool = True) -> None:
            grad_code = torch.empty_like(code)
            grad_derivative = torch.empty_like(derivative) if derivative_gradient else None
            own = torch.zeros(threads, bottleneck + 1, channels, derivative.shape[1])
            tensors = (code, derivative, weight, bias, grad, grad_code, grad_derivative, own)
            library.mnemodyn_tanh_field_backward(*(None if t is None else t.data_ptr() for t in tensors), *shape)

        def modes(name: str) -> dict:
            calls = {"forward": forward, "backward": backward}
            if name == "working tree":  # a null grad_derivative (the model's usual case) is new in this source
                calls["backward_without_derivative_gradient"] = lambda library: backward(library, False)
            return calls

        best = {pair: dict.fromkeys(modes(pair[0]), float("inf")) for pair in pairs}
        for _ in range(repeats + 1):
            for pair, library in pairs.items():
                for mode, call in modes(pair[0]).items():
                    start = time.perf_counter()
                    call(library)
                    best[pair][mode] = min(best[pair][mode], time.perf_counter() - start)
        rows = [
            {
                "source": name,
                "march": march,
                **{f"{mode}_seconds": seconds for mode, seconds in best[(name, march)].items()},
                "max_abs_error": float((forward(library).double() - exact).abs().max()),
            }
            for (name, march), library in pairs.items()
        ]
    return {
        "benchmark": "field_kernel",
        "frames": frames,
        "threads": threads,
        "repeats": repeats,
        "shape": {"bottleneck": bottleneck, "channels": channels, "rois": rois},
        "rows": rows,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = [
        "| source | -march | forward ms | backward ms | backward, no derivative gradient ms | max abs error |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        skipped = row.get("backward_without_derivative_gradient_seconds")
        lines.append(
            f"| {row['source']} | {row['march']} | {row['forward_seconds'] * 1e3:.1f} | "
            f"{row['backward_seconds'] * 1e3:.1f} | {'' if skipped is None else f'{skipped * 1e3:.1f}'} | "
            f"{row['max_abs_error']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--march", nargs="+", default=["native", "x86-64-v3"])
    parser.add_argument("--source-rev", help="also time the kernel source of this git revision")
    parser.add_argument("--frames", type=int, default=490)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run(args.march, args.source_rev, args.frames, args.threads, args.repeats)
    print_and_save(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
