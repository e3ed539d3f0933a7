"""The default model's training step, part by part, each beside a floor measured in the same process.

Parts, timed inside each step by wrapping their entry points: the field kernel (`_NativeTanhFieldContraction`,
forward and backward), the region convolution's products (`region_products`: forward, input gradient, weight
gradient), the fused AdamW step, and everything else (the step minus those: projections, wavelet transforms, norms,
activations, copies, autograd). Floors:

- region products: their multiply-adds at the rate of one large matmul (`--matmul-size` cubed) in this process;
- optimizer: AdamW reads parameters, gradients and both moments and writes three of them back, seven passes over the
  parameters' bytes, at the best memory rate of three torch passes over a flat tensor of as many elements (an
  in-place add, a copy and a sum; a write counts once, though the cache may first read the line);
- everything else: the whole training step of a model of the same structure (layers, wavelet levels, regions,
  coarse layers, context) at a width where arithmetic is negligible (`TINY_WIDTH`), i.e. the per-operation cost of
  the same graph, plus the dense layers' multiply-adds (`dense_layer_flops`) at the matmul's rate;
- field kernel: its vector arithmetic (`field_kernel_operations`, counted from kernels/field_contraction.c), each
  lane's multiply or multiply-add taken as two operations of the matmul's rate (a multiply-add is two, and a plain
  multiply takes the same slot of the multiply-add units), the divisions not counted.

The step is bench_backbone's (MSE reconstruction, backward, fused AdamW, `zero_grad(set_to_none=True)`), with freed
memory retained and the set-up's objects frozen for the collector, as in `mnemodyn pretrain`; the table gives the
parts of the fastest of `--rounds` steps.

    python -m benchmarks.bench_step_budget --json out.json
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from pathlib import Path

import torch

from benchmarks.bench_backbone import SIZES, best_seconds, build
from benchmarks.bench_interleaved import step_function
from benchmarks.machine import machine_description, print_and_save
from mnemodyn_hf import MnemoDynConfig, MnemoDynModel, field_contraction, region_products
from mnemodyn_hf.training.allocator import retain_freed_memory
from mnemodyn_hf.training.collector import frozen_setup_objects

#: The overhead model's widths: the released structure with 16 ROIs, 8 latent channels and 8 projection units.
TINY_WIDTH = dict(num_rois=16, latent_channels=8, projection_size=8)
PARTS = ("field kernel", "region products", "optimizer", "everything else")


def dense_layer_flops(config: dict, frames: int) -> int:
    """Floating-point operations of the dense layers outside the kernels over `frames` frames, forward and backward
    (three products each: output, input gradient, weight gradient): per layer the input projection (ROIs ->
    projection), the bottleneck (projection -> code) and the output projection (latent channels -> ROIs) at every
    frame, and each coarse mixer's (L, L) matrix per latent channel on the coarsest band of length L; the first
    layer's input projection has no input gradient (the input needs none)."""
    rois, projection, latent = config["num_rois"], config["projection_size"], config["latent_channels"]
    per_frame = rois * projection + projection * config["bottleneck_size"] + latent * rois
    coarsest = config["context_length"]
    for _ in range(config["wavelet_levels"]):
        coarsest = math.ceil(coarsest / 2)
    windows = frames // config["context_length"]
    coarse = windows * config["num_coarse_layers"] * latent * coarsest * coarsest
    return 3 * 2 * config["num_layers"] * (frames * per_frame + coarse) - 2 * frames * rois * projection


def field_kernel_operations_per_entry(bottleneck: int) -> tuple[int, int]:
    """Multiplies and multiply-adds (per vector lane) of the field kernel per entry of the (frames, channels, ROIs
    padded to `_ROI_PADDING`) expansion, forward and backward, on the reference-compatible path (no derivative
    gradient): forward, K for the pre-activation, 10 for the rational tanh (the square, two polynomials of four
    multiply-adds, the odd factor) and 1 for the contraction; backward, the same K + 10 again, 1 for the derivative
    times the velocity's gradient, 2 for the tanh's derivative and 2K for the weight and code gradients."""
    return bottleneck + 11, 3 * bottleneck + 13


def padded_rois(num_rois: int) -> int:
    """The ROI count the field kernel computes on (zero-padded to `_ROI_PADDING`)."""
    return math.ceil(num_rois / field_contraction._ROI_PADDING) * field_contraction._ROI_PADDING


def field_kernel_operations(config: dict, frames: int, backward: bool = True) -> int:
    """`field_kernel_operations_per_entry` over `frames` frames in every layer: forward, and backward unless
    `backward` is False."""
    forward, backward_operations = field_kernel_operations_per_entry(config["bottleneck_size"])
    per_entry = forward + backward_operations if backward else forward
    entries = config["num_layers"] * frames * config["latent_channels"] * padded_rois(config["num_rois"])
    return entries * per_entry


class _PartTimer:
    """Seconds spent in the field kernel and the region products, and the products' multiply-add count, while
    installed (wraps the autograd function's forward and backward and `region_products._product`, which every
    product goes through, native or torch, above the kernels' row limit too)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.flops = 0

    def _timed(self, part: str, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            self.seconds[part] += time.perf_counter() - start
            return result

        return wrapper

    def __enter__(self) -> _PartTimer:
        kernel = field_contraction._NativeTanhFieldContraction
        self._saved = (kernel.forward, kernel.backward, region_products._product)
        kernel.forward = staticmethod(self._timed("field kernel", kernel.forward))
        kernel.backward = staticmethod(self._timed("field kernel", kernel.backward))
        run_product = self._timed("region products", self._saved[2])

        def counted(kind, *tensors):
            regions, rows, out_features, in_features = region_products._dimensions(kind, *tensors[:2])
            self.flops += 2 * regions * rows * out_features * in_features
            return run_product(kind, *tensors)

        region_products._product = counted
        return self

    def __exit__(self, *exc) -> None:
        kernel = field_contraction._NativeTanhFieldContraction
        kernel.forward, kernel.backward = (staticmethod(function) for function in self._saved[:2])
        region_products._product = self._saved[2]


def run(size: str = "released", batch: int = 1, rounds: int = 8, matmul_size: int = 2048) -> dict:
    """Parts of the fastest step and their floors (seconds), with the reference rates the floors come from."""
    retain_freed_memory()
    config = SIZES[size]
    x = torch.randn(batch, config["context_length"], config["num_rois"], generator=torch.Generator().manual_seed(0))
    model = build("mnemodyn", size, torch.device("cpu"))
    parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    step = step_function(model, x, "train_step")
    tiny = MnemoDynModel(MnemoDynConfig(reference_compatible=True, **{**config, **TINY_WIDTH}))
    tiny_x = torch.randn(batch, config["context_length"], TINY_WIDTH["num_rois"])
    tiny_step = step_function(tiny, tiny_x, "train_step")
    for _ in range(2):  # warm-up, and the first-use timings of the kernels' choices
        step()
        tiny_step()
    steps = []
    with frozen_setup_objects():
        for _ in range(rounds):
            with _PartTimer() as timer:
                start = time.perf_counter()
                optimizer_seconds = step()
                total = time.perf_counter() - start
            parts = {**timer.seconds, "optimizer": optimizer_seconds}
            parts["everything else"] = total - sum(parts.values())
            steps.append({"seconds": total, "parts": parts, "product_flops": timer.flops})
        tiny_seconds = best_seconds(tiny_step, rounds)
    a, b = torch.randn(matmul_size, matmul_size), torch.randn(matmul_size, matmul_size)
    matmul_flops_per_second = 2 * matmul_size**3 / best_seconds(lambda: a @ b, 5)
    flat, other = torch.full((parameters,), 1.0), torch.full((parameters,), 2.0)
    bytes_ = 4 * parameters
    memory_bytes_per_second = max(
        3 * bytes_ / best_seconds(lambda: flat.add_(other), 5),
        2 * bytes_ / best_seconds(lambda: flat.copy_(other), 5),
        bytes_ / best_seconds(lambda: other.sum(), 5),
    )
    fastest = min(steps, key=lambda s: s["seconds"])
    floors = {
        "field kernel": 2 * field_kernel_operations(config, batch * config["context_length"]) / matmul_flops_per_second,
        "region products": fastest["product_flops"] / matmul_flops_per_second,
        "optimizer": 7 * bytes_ / memory_bytes_per_second,
        "everything else": tiny_seconds
        + dense_layer_flops(config, batch * config["context_length"]) / matmul_flops_per_second,
    }
    return {
        "benchmark": "step_budget",
        "size": size,
        "batch": batch,
        "rounds": rounds,
        "step_seconds": fastest["seconds"],
        "parts": fastest["parts"],
        "floors": floors,
        "steps": steps,
        "parameters": parameters,
        "matmul_size": matmul_size,
        "matmul_flops_per_second": matmul_flops_per_second,
        "memory_bytes_per_second": memory_bytes_per_second,
        "tiny_step_seconds": tiny_seconds,
        "tiny_width": TINY_WIDTH,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = ["| part | in the step s | floor s | in the step / floor |", "|---|---|---|---|"]
    for part in PARTS:
        seconds, floor = report["parts"][part], report["floors"][part]
        lines.append(f"| {part} | {seconds:.3f} | {floor:.3f} | {seconds / floor:.2f}x |")
    floor = sum(report["floors"].values())
    lines.append(f"| step | {report['step_seconds']:.3f} | {floor:.3f} | {report['step_seconds'] / floor:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run(args.size, args.batch, args.rounds, args.matmul_size)
    print_and_save(report, format_table(report), args.json)
    matmul, memory = report["matmul_flops_per_second"] / 1e9, report["memory_bytes_per_second"] / 1e9
    print(
        f"Rates: matmul {matmul:.0f} GFLOP/s, memory {memory:.1f} GB/s; "
        f"the tiny-width step {report['tiny_step_seconds']:.3f} s"
    )


if __name__ == "__main__":
    main()
