"""CP low-rank operators: parameters and training-step throughput per rank against full kernels, side by side.

    python -m benchmarks.bench_cp                 # released size, batch 4, ranks 8, 32, 128 and full

(The masked-reconstruction R^2 of each rank after the same pretraining budget needs the pretraining entry
point; it is not part of this benchmark yet.)
"""

from __future__ import annotations

import time

import torch

from benchmarks.bench_backbone import SIZES, machine_description, run_worker
from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
from mnemodyn_hf.modeling_mnemodyn import MnemoDynCPRegionConv, MnemoDynRegionConv

RANKS = (None, 8, 32, 128)


def operator_parameters(size: str, cp_rank: int | None) -> tuple[int, int]:
    """(region-convolution parameters, all parameters) of a model, counted on the meta device."""
    with torch.device("meta"):
        model = MnemoDynModel(MnemoDynConfig(operator_cp_rank=cp_rank, **SIZES[size]))
    operator = sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, (MnemoDynRegionConv, MnemoDynCPRegionConv))
        for p in m.parameters()
    )
    return operator, sum(p.numel() for p in model.parameters())


def run(size: str = "released", batch: int = 4, ranks=RANKS, repeats: int = 2) -> dict:
    frames = SIZES[size]["context_length"]
    rows = []
    for rank in ranks:
        operator, total = operator_parameters(size, rank)
        result = run_worker("mnemodyn", "train_step", size, batch, frames, repeats, cp_rank=rank)
        rows.append(
            {
                "cp_rank": rank,
                "operator_parameters": operator,
                "parameters": total,
                "train_step_seconds": result["seconds"],
                "peak_memory_bytes": result["peak_memory_bytes"],
            }
        )
    return {
        "benchmark": "cp",
        "size": size,
        "batch": batch,
        "frames": frames,
        "rows": rows,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    full = next(r for r in report["rows"] if r["cp_rank"] is None)
    lines = [
        "| CP rank | operator parameters | fewer than full | all parameters | training step (s) | speed vs full |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['cp_rank'] or 'full'} | {r['operator_parameters']:,} | "
            f"{full['operator_parameters'] / r['operator_parameters']:.0f}x | {r['parameters']:,} | "
            f"{r['train_step_seconds']:.3f} | {full['train_step_seconds'] / r['train_step_seconds']:.2f}x |"
        )
    return "\n".join(lines)
