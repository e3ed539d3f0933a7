"""Backbone speed and memory: `MnemoDynModel` against the literal reference port, side by side.

Each (implementation, mode) runs in a fresh subprocess so peak memory is its own. Memory is the peak
resident-set size, sampled every millisecond during a first (warm-up) step, minus the RSS just before it
(weights, inputs and the already-allocated AdamW state are excluded); on CUDA it is `max_memory_allocated`
above the same point. Timed steps follow without the sampler. A training step is forward + MSE reconstruction loss +
backward + AdamW step (the fused kernel, and after the warm-up glibc keeping freed memory in the process, as
`mnemodyn pretrain` does, for every implementation); time is the best of `--repeats` steps after the warm-up.

    python -m benchmarks.bench_backbone                      # released size, B=4, T=490
    python -m benchmarks.bench_backbone --size tiny --repeats 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from benchmarks.machine import TORCH_HUGE_PAGES_VARIABLE, huge_page_bytes, machine_description
from mnemodyn_hf import MnemoDynConfig, MnemoDynModel, field_contraction
from mnemodyn_hf.native_kernels import DISABLE_VARIABLE, kernel_status
from mnemodyn_hf.training.allocator import retain_freed_memory

SIZES = {
    # the authors' released model (reference_implementation.md §1.10)
    "released": dict(
        num_rois=450,
        num_layers=4,
        projection_size=100,
        bottleneck_size=3,
        latent_channels=300,
        wavelet_levels=5,
        operator_kernel_size=5,
        num_regions=4,
        num_coarse_layers=4,
        context_length=490,
    ),
    "tiny": dict(
        num_rois=24,
        num_layers=2,
        projection_size=8,
        bottleneck_size=3,
        latent_channels=8,
        wavelet_levels=3,
        operator_kernel_size=5,
        num_regions=4,
        num_coarse_layers=2,
        context_length=64,
    ),
}
# compared by default: mnemodyn runs the defaults (the native kernels where they build: the field contraction's as
# timed per machine, the region products' as timed per shape, the wavelet transforms'), mnemodyn_eager the PyTorch
# path on the same weights (its worker runs with MNEMODYN_NATIVE_KERNELS=0: the chunked field contraction, torch's
# GEMMs, the tensor wavelet transforms)
IMPLEMENTATIONS = ("literal_reference_port", "mnemodyn_eager", "mnemodyn")
ALL_IMPLEMENTATIONS = IMPLEMENTATIONS + ("attention_baseline",)
MODES = ("forward", "train_step")
PRECISIONS = ("fp32", "bf16")  # bf16 = torch.autocast to bfloat16 around forward and loss, weights in fp32


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak RSS (CPU, sampled) or peak allocated memory (CUDA) above the level at `start`."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self.peak = _rss_bytes()
            self._running = True
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._running = False
            self._thread.join()
            self.peak = max(self.peak, _rss_bytes())

    @property
    def above_base(self) -> int:
        return self.peak - self.base


def build(implementation: str, size: str, device: torch.device, cp_rank: int | None = None) -> torch.nn.Module:
    """The model under test. The MnemoDyn implementations hold identical (converted-layout) weights."""
    torch.manual_seed(0)
    if implementation == "attention_baseline":
        from benchmarks.attention_baseline import AttentionBaseline

        return AttentionBaseline(num_rois=SIZES[size]["num_rois"]).to(device=device)
    field = "eager" if implementation == "mnemodyn_eager" else "auto"
    config = MnemoDynConfig(
        reference_compatible=True, operator_cp_rank=cp_rank, field_implementation=field, **SIZES[size]
    )
    model = MnemoDynModel(config)
    if implementation == "literal_reference_port":
        from benchmarks.reference_port import LiteralReferenceBackbone

        model = LiteralReferenceBackbone(model)
    return model.to(device=device)


def best_seconds(function, repeats: int = 3) -> float:
    """Best wall time of `repeats` calls after one warm-up call (the caller synchronises devices inside)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _forward(model: torch.nn.Module, x: torch.Tensor, layers: int | None) -> torch.Tensor:
    out = model(x, num_layers=layers) if layers else model(x)
    return out if isinstance(out, torch.Tensor) else out.last_hidden_state


def measure(
    implementation: str,
    mode: str,
    size: str,
    batch: int,
    frames: int,
    repeats: int,
    device: str,
    precision: str,
    layers: int | None = None,
    cp_rank: int | None = None,
) -> dict:
    """Seconds per call and peak memory of one (implementation, mode) in this process.

    `layers` runs only the first layers of the attention baseline (for extrapolating very long inputs);
    `cp_rank` builds MnemoDyn with CP-factored region convolutions.
    """
    device_ = torch.device(device)
    model = build(implementation, size, device_, cp_rank)
    config = SIZES[size]
    x = torch.randn(batch, frames, config["num_rois"], device=device_)
    autocast = torch.autocast(device_.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    if mode == "forward":
        model.eval()

        def step():
            with torch.no_grad(), autocast:
                _forward(model, x, layers)
    else:
        model.train()
        parameters = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=1e-4, fused=True)  # as the pretraining loop; for both
        for parameter in parameters:  # allocate the optimizer state now, so memory counts only the step
            parameter.grad = torch.zeros_like(parameter)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        def step():
            with autocast:
                loss = torch.nn.functional.mse_loss(_forward(model, x, layers).float(), x)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    with PeakMemory(device_) as memory:
        step()  # warm-up, measured for memory (allocators may keep what it freed, so not later steps)
    if mode != "forward":
        retain_freed_memory()  # as the pretraining loop, for every implementation; after the memory measurement,
        # whose baseline would otherwise hold the optimizer-state set-up's freed gradients
    times = []
    for _ in range(repeats):  # timed without the memory sampler
        start = time.perf_counter()
        step()
        if device_.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {
        "implementation": implementation,
        "mode": mode,
        "frames": frames,
        "batch": batch,
        "layers_run": layers,
        "cp_rank": cp_rank,
        "precision": precision,
        "seconds": min(times),
        "seconds_all": times,
        "sequences_per_second": batch / min(times),
        "peak_memory_bytes": memory.above_base,
        "parameters": sum(p.numel() for p in model.parameters()),
        "field_kernel": kernel_status().reason if implementation != "literal_reference_port" else None,
        "field_choice": list(field_contraction._choices.values()) if implementation == "mnemodyn" else None,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "huge_page_bytes": huge_page_bytes(),
        "torch_huge_page_allocations": os.environ.get(TORCH_HUGE_PAGES_VARIABLE, "unset"),
    }


def run_worker(
    implementation: str,
    mode: str,
    size: str,
    batch: int,
    frames: int,
    repeats: int = 1,
    device: str = "cpu",
    precision: str = "fp32",
    layers: int | None = None,
    cp_rank: int | None = None,
    environment: dict[str, str] | None = None,
) -> dict:
    """`measure` in a fresh subprocess (so its peak memory is its own), with `environment`'s variables added to this
    process's."""
    root = Path(__file__).resolve().parents[1]
    command = (
        [
            sys.executable,
            "-m",
            "benchmarks.bench_backbone",
            "--worker",
            implementation,
            mode,
            "--size",
            size,
            "--batch",
            str(batch),
            "--frames",
            str(frames),
            "--repeats",
            str(repeats),
            "--device",
            device,
            "--precision",
            precision,
        ]
        + (["--layers", str(layers)] if layers else [])
        + (["--cp-rank", str(cp_rank)] if cp_rank else [])
    )
    variables = {**os.environ, **(environment or {})}
    if implementation == "mnemodyn_eager":
        variables[DISABLE_VARIABLE] = "0"
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False, env=variables)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(
    size: str = "released",
    batch: int = 4,
    frames: int = 490,
    repeats: int = 2,
    device: str = "cpu",
    precision: str = "fp32",
    implementations=IMPLEMENTATIONS,
    modes=MODES,
) -> dict:
    """Measure every (implementation, mode) in its own subprocess; return results with ratios."""
    if device != "cpu":  # the fused field kernel is CPU-only: off the CPU, mnemodyn is the eager path already
        implementations = [name for name in implementations if name != "mnemodyn_eager"]
    results = [
        run_worker(implementation, mode, size, batch, frames, repeats, device, precision)
        for mode in modes
        for implementation in implementations
    ]
    ratios = {}
    for mode in modes:
        by_impl = {r["implementation"]: r for r in results if r["mode"] == mode}
        if {"literal_reference_port", "mnemodyn"} <= set(by_impl):
            base, ours = by_impl["literal_reference_port"], by_impl["mnemodyn"]
            ratios[mode] = {
                "speedup": base["seconds"] / ours["seconds"],
                "memory_fraction": ours["peak_memory_bytes"] / max(base["peak_memory_bytes"], 1),
            }
            if "mnemodyn_eager" in by_impl:
                ratios[mode]["eager_speedup"] = base["seconds"] / by_impl["mnemodyn_eager"]["seconds"]
    return {
        "benchmark": "backbone",
        "size": size,
        "batch": batch,
        "frames": frames,
        "repeats": repeats,
        "device": device,
        "precision": precision,
        "results": results,
        "ratios": ratios,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = [
        "| mode | implementation | s / step | sequences / s | peak memory of the step (MiB) |",
        "|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['mode']} | {r['implementation']} | {r['seconds']:.3f} | {r['sequences_per_second']:.2f} | "
            f"{r['peak_memory_bytes'] / 2**20:.0f} |"
        )
    for mode, ratio in report["ratios"].items():
        eager = f" (the eager path {ratio['eager_speedup']:.2f}x)" if "eager_speedup" in ratio else ""
        lines.append(
            f"\n{mode}: mnemodyn is {ratio['speedup']:.2f}x faster{eager} and uses "
            f"{ratio['memory_fraction']:.3f} of the literal port's peak memory."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, help="defaults to the size's context length (the literal port needs it)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="bf16: autocast, fp32 weights")
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    parser.add_argument("--worker", nargs=2, metavar=("IMPLEMENTATION", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--layers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cp-rank", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        frames = args.frames or SIZES[args.size]["context_length"]
        print(
            json.dumps(
                measure(
                    *args.worker,
                    args.size,
                    args.batch,
                    frames,
                    args.repeats,
                    args.device,
                    args.precision,
                    args.layers,
                    args.cp_rank,
                )
            )
        )
        return
    frames = args.frames or SIZES[args.size]["context_length"]
    report = run(args.size, args.batch, frames, args.repeats, args.device, args.precision)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
