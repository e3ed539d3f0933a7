"""The Accelerator of a pretraining run and its trackers (a CSV file beside TensorBoard)."""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker
from accelerate.utils import DistributedType, ProjectConfiguration, is_tensorboard_available

from .arguments import PretrainingArguments


class CSVTracker(GeneralTracker):
    """Accelerate tracker writing `step,name,value` rows to `<logging_dir>/metrics.csv` (appends on resume)."""

    name = "csv"
    requires_logging_directory = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike):
        super().__init__()
        self.path = Path(logging_dir) / "metrics.csv"

    @property
    def tracker(self) -> Path:
        return self.path

    def start(self) -> None:
        """Create the folder and the table's header (recent Accelerate releases call this on the main
        process; 1.1 never does, so the writers below call it too)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.write_text("step,name,value\n")

    def store_init_configuration(self, values: dict) -> None:
        self.start()
        (self.path.parent / "hparams.json").write_text(json.dumps(values, indent=2, default=str))

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        self.start()
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in values.items():
                writer.writerow([step, name, value])


def make_accelerator(args: PretrainingArguments) -> Accelerator:
    """The Accelerator: bf16 autocast on CUDA under `auto`, gradient accumulation, the requested trackers."""
    precision = args.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() else "no"
    trackers: list[Any] = []
    for name in filter(None, (item.strip() for item in args.report_to.split(","))):
        if name == "csv":
            trackers.append(CSVTracker("pretraining", args.output_dir))
        elif name == "tensorboard" and not is_tensorboard_available():
            raise ValueError(
                "--report-to includes tensorboard, which is not installed: `pip install 'mnemodyn-hf[pretrain]'` "
                "(or `pip install tensorboard`), or pass --report-to csv."
            )
        else:
            trackers.append(name)
    project = ProjectConfiguration(project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, "logs"))
    return Accelerator(
        mixed_precision=precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=trackers or None,
        project_config=project,
    )


def warn_about_launch_fallbacks(accelerator: Accelerator) -> None:
    """Say so when a launch silently runs something else than what it asked for:

    * `accelerate launch --cpu --num_processes N` (N > 1) without `--mpirun_hostfile` starts ONE process (it sets
      MASTER_ADDR but launches no workers);
    * `accelerate launch --use_fsdp` without GPUs: Accelerate runs FSDP only on accelerators; on CPU it replicates
      the model as DDP instead of sharding it (tests/training/test_fsdp_cpu.py shards on CPU with torch's FSDP2).
    """
    on_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
    if on_cpu and "MASTER_ADDR" in os.environ and accelerator.num_processes == 1 and "WORLD_SIZE" not in os.environ:
        warnings.warn(
            "accelerate launch --cpu started a single process: Accelerate runs several CPU processes only through "
            "MPI (--mpirun_hostfile) or torchrun. For an N-process CPU DDP job use `ACCELERATE_USE_CPU=1 accelerate "
            "launch --multi_gpu --num_processes N ...` (or `ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N ...`).",
            stacklevel=2,
        )
    wants_fsdp = os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true")
    if wants_fsdp and accelerator.distributed_type != DistributedType.FSDP:
        warnings.warn(
            f"accelerate launch --use_fsdp, but this run is {accelerator.distributed_type.value}: Accelerate shards "
            "with FSDP only on GPUs (or other accelerators), so every process holds the whole model. On CPU this is "
            "DDP; it trains the same model, but it does not save memory.",
            stacklevel=2,
        )


__all__ = ["CSVTracker", "make_accelerator", "warn_about_launch_fallbacks"]
