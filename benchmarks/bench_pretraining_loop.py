"""The pretraining loop's throughput against the bare model step: what the data pipeline and the loop cost.

A corpus of `runs` recordings (T frames x R ROIs, random values in the cohort schema: a speed benchmark, shapes
only) is saved with `datasets`; `training.pretrain` (the loop behind `mnemodyn pretrain`, on the device Accelerate
picks) runs `short` and then `short + timed` steps on it, and the difference of the two wall times is the time of
`timed` loop steps (corpus preparation, validation, export and checkpointing are in both runs and cancel out; a
one-step run before both takes the process's first-call costs, which would otherwise shrink the difference).
The bare step is the same model and batch shape in this process: forward, backward, fused AdamW, nothing else.
Overhead = 1 - (loop windows/s) / (bare windows/s).

    python -m benchmarks.bench_pretraining_loop                         # released size, T 490, batch 4 (CPU: ~3 min)
    python -m benchmarks.bench_pretraining_loop --size tiny --frames 64 --timed 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
import torch
from accelerate.state import AcceleratorState, GradientState

from benchmarks.bench_backbone import SIZES, best_seconds, machine_description
from mnemodyn_hf import MnemoDynConfig
from mnemodyn_hf.data.schema import ID_COLUMNS, cohort_features
from mnemodyn_hf.modeling_pretraining import MnemoDynForPreTraining
from mnemodyn_hf.training import PretrainingArguments, pretrain

PRECISION_FLAGS = {"fp32": "no", "bf16": "bf16"}


def _corpus(folder: Path, runs: int, frames: int, rois: int) -> str:
    rng = np.random.default_rng(0)
    cohort = datasets.Dataset.from_dict(
        {
            "bold": [rng.standard_normal((frames, rois), dtype=np.float32) for _ in range(runs)],
            "tr": [0.72] * runs,
            **{column: [f"{column}-{i:03d}" for i in range(runs)] for column in ID_COLUMNS},
            "path": [""] * runs,
        },
        features=cohort_features(rois),
    )
    cohort.save_to_disk(str(folder / "corpus"))
    return str(folder / "corpus")


def _model_config(size: str, frames: int) -> dict:
    config = {key: value for key, value in SIZES[size].items() if key != "num_rois"}
    return config | {"context_length": frames}


def _loop_seconds(options: dict, steps: int) -> float:
    start = time.perf_counter()
    try:
        pretrain(PretrainingArguments(**options, max_steps=steps))
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    return time.perf_counter() - start


def bare_step_seconds(size: str, frames: int, batch: int, precision: str, repeats: int = 3) -> float:
    """Forward + backward + fused AdamW of the pretraining model on one batch already on the device."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = MnemoDynConfig(num_rois=SIZES[size]["num_rois"], **_model_config(size, frames))
    model = MnemoDynForPreTraining(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, frames, config.num_rois, device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step():
        with autocast:
            loss = model(input_values=x, corruption_seeds=torch.arange(batch)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return best_seconds(step, repeats)


def run(
    size: str = "released",
    frames: int = 490,
    batch: int = 4,
    runs: int = 16,
    short: int = 2,
    timed: int = 10,
    precision: str = "fp32",
    num_workers: int = 0,
) -> dict:
    with tempfile.TemporaryDirectory(prefix="mnemodyn-loop-") as folder:
        folder = Path(folder)
        corpus = _corpus(folder, runs, 2 * frames, SIZES[size]["num_rois"])
        model_config = folder / "model.json"
        model_config.write_text(json.dumps(_model_config(size, frames)))
        options = dict(
            corpus=corpus,
            model_config=str(model_config),
            window_frames=frames,
            window_stride=frames // 2,
            per_device_batch_size=batch,
            warmup_steps=1,
            eval_every=10_000,
            checkpoint_every=10_000,
            report_to="csv",
            mixed_precision=PRECISION_FLAGS[precision],
            num_workers=num_workers,
        )
        _loop_seconds(options | {"output_dir": str(folder / "warm-up")}, 1)  # first-call costs, in neither timing
        first = _loop_seconds(options | {"output_dir": str(folder / "short")}, short)
        second = _loop_seconds(options | {"output_dir": str(folder / "long")}, short + timed)
    # the loop's step time is a difference of two whole runs: on a busy machine it can come out <= 0, which is
    # recorded as unmeasured (None) rather than as a negative speed
    loop = (second - first) / timed
    measured = loop > 0
    bare = bare_step_seconds(size, frames, batch, precision)
    return {
        "benchmark": "pretraining_loop",
        "size": size,
        "frames": frames,
        "batch": batch,
        "precision": precision,
        "num_workers": num_workers,
        "loop_seconds_per_step": loop,
        "bare_seconds_per_step": bare,
        "loop_windows_per_second": batch / loop if measured else None,
        "bare_windows_per_second": batch / bare,
        "overhead": 1 - bare / loop if measured else None,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    if report["loop_windows_per_second"] is None:
        return (
            f"The loop's step time came out at {report['loop_seconds_per_step']:.3f} s (a difference of two runs on a "
            f"busy machine): not measured. Bare model step: {report['bare_seconds_per_step']:.3f} s. Loop overhead: "
            "unmeasured."
        )
    return "\n".join(
        [
            "| | s / step | windows / s |",
            "|---|---|---|",
            f"| bare model step | {report['bare_seconds_per_step']:.3f} | {report['bare_windows_per_second']:.2f} |",
            f"| `mnemodyn pretrain` loop | {report['loop_seconds_per_step']:.3f} | "
            f"{report['loop_windows_per_second']:.2f} |",
            "",
            f"Loop overhead: {report['overhead']:.1%} ({report['size']} size, {report['frames']}-frame windows, "
            f"batch {report['batch']}, {report['precision']}, {report['num_workers']} DataLoader workers, "
            f"{report['device']}).",
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--frames", type=int, default=490)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--timed", type=int, default=10)
    parser.add_argument("--precision", choices=sorted(PRECISION_FLAGS), default="fp32")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(
        args.size, args.frames, args.batch, timed=args.timed, precision=args.precision, num_workers=args.num_workers
    )
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
