"""The pretraining loop with Accelerate: one CPU, one GPU, many GPUs or many nodes with the same code.

The corpus (`corpus`) is split by subject, scaled by the feature extractor fitted on the training runs only, cut into
windows and shuffled per epoch (`Dataset.shuffle(seed + epoch)`). Every window carries its index, from which each
epoch derives the window's corruption seed: masks and noise do not depend on batch size, process count or
resumption. Checkpoints are atomic (`checkpoints`) and resuming is exact. See docs/pretraining.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from .allocator import retain_freed_memory
from .arguments import PretrainingArguments
from .checkpoints import latest_checkpoint, list_checkpoints, save_checkpoint_atomically
from .collector import frozen_setup_objects
from .corpus import VALIDATION_STREAM, prepare_corpus, window_loader
from .export import export_model
from .model_setup import initial_model
from .recipe import recipe_choices
from .tracking import make_accelerator, warn_about_launch_fallbacks
from .validation import validate


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


def evaluate_initial_model(args: PretrainingArguments) -> dict[str, float]:
    """The validation metrics of the model `pretrain(args)` starts from, before any step: the same held-out windows,
    scaling and corruptions as that run's evaluations (e.g. a compressed `--init-from` folder before fine-tuning)."""
    accelerator = make_accelerator(dataclasses.replace(args, report_to=""))
    set_seed(args.seed)
    with accelerator.main_process_first():
        corpus = prepare_corpus(args)
    args = corpus.arguments  # with the options the corpus resolved
    model = accelerator.prepare(initial_model(args, corpus))
    loader = accelerator.prepare(window_loader(corpus.validation, args, VALIDATION_STREAM, None))
    return validate(model, loader, accelerator)


def pretrain(args: PretrainingArguments) -> Path:
    """Run pretraining; returns the `model/` folder (weights, config, fitted feature extractor, subject split,
    `pretraining_metrics.json` with the last validation metrics, model card). Also writes, under `args.output_dir`:
    `checkpoints/`, `logs/` (TensorBoard) and `metrics.csv`. Uploading the folder is `mnemodyn push`'s job."""
    retain_freed_memory()  # on glibc: no re-faulting of the step's freed buffers (training/allocator.py)
    accelerator = make_accelerator(args)
    warn_about_launch_fallbacks(accelerator)
    set_seed(args.seed)
    with accelerator.main_process_first():
        corpus = prepare_corpus(args)
    if choices := recipe_choices(args, corpus.arguments):
        accelerator.print(choices)
    args = corpus.arguments  # with the options the corpus resolved
    model = initial_model(args, corpus)
    optimizer = torch.optim.AdamW(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=args.learning_rate,
        weight_decay=args.weight_decay,
        betas=(0.9, 0.95),
        fused=True,  # one kernel per step instead of a dozen passes per parameter: 2.3x on CPU at the released size
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
    bar = tqdm(
        total=args.max_steps,
        initial=progress.step,
        disable=not accelerator.is_local_main_process,
        desc=f"Pretraining ({args.objective})",
    )
    metrics: dict[str, float] = {}
    step_losses: list[torch.Tensor] = []
    model.train()
    with frozen_setup_objects():  # full collections skip the set-up's objects (training/collector.py)
        while progress.step < args.max_steps:
            loader = accelerator.prepare(
                window_loader(corpus.train, args, progress.epoch + 1, args.seed + progress.epoch)
            )
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
                accelerator.unwrap_model(model).after_optimizer_step()  # the objective's per-step hook (jepa: EMA)
                progress.step += 1
                loss = accelerator.reduce(torch.stack(step_losses).mean(), reduction="mean")
                step_losses = []
                logged = {
                    "train/loss": float(loss),
                    "train/grad_norm": float(grad_norm),
                    "train/learning_rate": scheduler.get_last_lr()[0],
                }
                if progress.step % args.eval_every == 0 or progress.step == args.max_steps:
                    metrics = validate(model, validation_loader, accelerator)
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
        metrics = validate(model, validation_loader, accelerator)
    folder = export_model(accelerator, model, corpus, args, metrics)
    accelerator.end_training()
    return folder


__all__ = ["TrainingProgress", "evaluate_initial_model", "pretrain"]
