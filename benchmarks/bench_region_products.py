"""The region convolution's three products (forward, input gradient, weight gradient): the native kernels against
torch's batched GEMMs, per shape and in a whole step.

Products: the released size's shapes (4 regions, 600 x 3000 per region, `rows` positions per region: 62, 31, 16, 8
and 4 for one 490-frame sequence), each call allocating its output as the model does and reading one of three weights
in turn (86 MB, more than a server's last-level cache: in a step every layer's weight comes from memory), kernel and
torch interleaved call by call; best of `--repeats`. Step: a batch-1 training step of the default model (as
bench_backbone.py) with the products' choices as tuned and with torch forced for all three, interleaved step by step
in one process; best and median of `--rounds` each.

    python -m benchmarks.bench_region_products --json benchmarks/results/region_products.json
    MNEMODYN_KERNEL_MARCH=x86-64-v3 python -m benchmarks.bench_region_products   # the AVX2 build
"""

from __future__ import annotations

import time

import torch

from benchmarks.interleaved_settings import command_line, format_step_table, interleaved_training_steps
from benchmarks.machine import machine_description
from mnemodyn_hf import region_products

RELEASED_ROWS = (62, 31, 16, 8, 4)


def products(rows_per_region=RELEASED_ROWS, regions=4, out_features=600, in_features=3000, repeats=10) -> list:
    """Best seconds of the kernel and of torch per product and row count (above a kernel's limit: torch only)."""
    generator = torch.Generator().manual_seed(0)
    weights = [torch.randn(regions, out_features, in_features, generator=generator) for _ in range(3)]
    bias = torch.randn(regions, out_features, generator=generator)
    results = []
    for kind in region_products.PRODUCTS:
        for count in rows_per_region:
            grad = torch.randn(regions, count, out_features, generator=generator)
            rows = torch.randn(regions, count, in_features, generator=generator)
            calls = {
                "forward": [(rows, weight, bias) for weight in weights],
                "input_gradient": [(grad, weight) for weight in weights],
                "weight_gradient": [(grad, rows)],
            }[kind]
            names = ["torch"] + (["native"] * (count <= region_products.MAX_KERNEL_ROWS))
            best = dict.fromkeys(names, float("inf"))
            for repeat in range(repeats + 1):  # the first round is a warm-up, kept only if nothing beats it
                for name in names:
                    tensors = calls[repeat % len(calls)]
                    start = time.perf_counter()
                    region_products._run(kind, name, *tensors)
                    best[name] = min(best[name], time.perf_counter() - start)
            ratio = best["torch"] / best.get("native", best["torch"])
            results.append({"product": kind, "rows": count, "seconds": best, "torch_vs_native": ratio})
    return results


def step(size: str = "released", frames: int = 490, rounds: int = 8) -> dict:
    """A batch-1 training step with the products as tuned and with torch forced for all three, interleaved."""
    tuned_applies = region_products._kernel_applies

    def select(setting: str) -> None:
        region_products._kernel_applies = tuned_applies if setting == "tuned" else (lambda kind, *tensors: False)

    try:
        report = interleaved_training_steps(select, ("tuned", "torch"), size, frames, rounds)
    finally:
        region_products._kernel_applies = tuned_applies
    return {**report, "choices": dict(region_products._choices)}


def run(size: str = "released", repeats: int = 10, rounds: int = 8) -> dict:
    product_shapes = {} if size == "released" else {"rows_per_region": (4, 8), "out_features": 48, "in_features": 90}
    return {
        "benchmark": "region_products",
        "products": products(repeats=repeats, **product_shapes),
        "step": step(size=size, frames=490 if size == "released" else 64, rounds=rounds),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = ["| product | rows per region | torch ms | kernel ms | torch / kernel |", "|---|---|---|---|---|"]
    for row in report["products"]:
        native = row["seconds"].get("native")
        kernel = f"{native * 1e3:.2f}" if native is not None else "(above the kernel's limit)"
        torch_ms = row["seconds"]["torch"] * 1e3
        product = row["product"].replace("_", " ")
        lines.append(f"| {product} | {row['rows']} | {torch_ms:.2f} | {kernel} | {row['torch_vs_native']:.2f}x |")
    lines += ["", *format_step_table(report["step"], {"tuned": "products as tuned", "torch": "torch forced"})]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    command_line(__doc__, run, format_table, repeats=10, argv=argv)


if __name__ == "__main__":
    main()
