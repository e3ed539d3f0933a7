"""Two of the three ways to read a backbone, trained with `transformers.Trainer` inside one outer fold:

* `frozen_head_scores`: the task model's MLP head (`MnemoDynPredictionHead`) on the frozen backbone. A frozen backbone
  in eval mode is a fixed function, so the head is trained on the pooled embeddings computed once: the same model and
  gradients as `MnemoDynForSequenceClassification(freeze_backbone=True)`, without re-running the backbone each epoch;
* `finetuned_scores`: the whole task model (`freeze_backbone=False`) trained end to end on the runs.

Both hold out an inner validation split of the training subjects, evaluate on it every epoch, keep the best epoch
(early stopping) and score the outer test rows once, in eval mode. Classes are weighted by their training counts;
regression targets are z-scored with training statistics and mapped back.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from torch import nn
from transformers import EarlyStoppingCallback, PrinterCallback, Trainer, TrainingArguments
from transformers.modeling_outputs import SequenceClassifierOutput

from ..configuration_mnemodyn import MnemoDynConfig
from ..data.collator import MnemoDynDataCollator
from ..data.splits import assign_subjects
from ..modeling_heads import MnemoDynForRegression, MnemoDynForSequenceClassification, MnemoDynPredictionHead
from .folds import constant_within_subjects
from .metrics import metrics_for_trainer


@dataclass(frozen=True)
class HeadSettings:
    """Training settings of the Trainer read-outs."""

    head_epochs: int = 40
    finetune_epochs: int = 4
    #: Full fine-tuning trains on one random crop of `config.context_length` frames per run and epoch (False: on
    #: whole runs); validation and test runs are always read whole.
    finetune_crop: bool = True
    batch_size: int = 16
    head_learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    weight_decay: float = 1e-2
    early_stopping_patience: int = 8
    validation_fraction: float = 0.2


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and info logs (weight loading, checkpoint shards) inside the block; the
    evaluation shows its own progress and one summary."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def random_crops(frames: int, seed: int):
    """A `Dataset.with_transform` function: each access returns one random `frames`-frame crop of every longer run
    (from a seeded generator), so full fine-tuning costs the crop, not the whole run."""
    rng = np.random.default_rng(seed)

    def crop(batch: dict) -> dict:
        bolds = []
        for bold in batch["bold"]:
            bold = np.asarray(bold, dtype=np.float32)
            start = int(rng.integers(0, len(bold) - frames + 1)) if len(bold) > frames else 0
            bolds.append(bold[start : start + frames])
        return {**batch, "bold": bolds}

    return crop


class PooledFeatureHead(nn.Module):
    """`MnemoDynPredictionHead` on precomputed pooled embeddings (B, P) -> logits (B, num_outputs)."""

    def __init__(self, config: MnemoDynConfig, num_outputs: int, class_weights: torch.Tensor | None):
        super().__init__()
        self.head = MnemoDynPredictionHead(config, num_outputs)
        self.register_buffer("class_weights", class_weights, persistent=False)

    def forward(self, pooled: torch.Tensor, labels: torch.Tensor | None = None) -> SequenceClassifierOutput:
        logits = self.head(pooled)
        loss = None if labels is None else _loss(logits, labels, self.class_weights)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _loss(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None) -> torch.Tensor:
    if class_weights is not None:
        return nn.functional.cross_entropy(logits, labels.long(), weight=class_weights.to(logits))
    return nn.functional.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))


@dataclass(frozen=True)
class _Targets:
    """Training targets as the model sees them, and how to map its outputs back."""

    values: np.ndarray
    num_outputs: int
    class_weights: torch.Tensor | None
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def of(cls, labels: np.ndarray, task: str) -> _Targets:
        if task == "classification":
            counts = np.bincount(labels.astype(int)).astype(np.float64)
            weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / len(counts), dtype=torch.float32)
            return cls(labels.astype(np.int64), len(counts), weights)
        mean, std = float(labels.mean()), float(labels.std()) or 1.0
        return cls(((labels - mean) / std).astype(np.float32), 1, None, mean, std)  # values == encode(labels)

    def encode(self, labels: np.ndarray) -> np.ndarray:
        """Labels as the model is trained on them: class indices, or targets z-scored with the training statistics."""
        labels = np.asarray(labels)
        return (
            labels.astype(np.int64)
            if self.class_weights is not None
            else ((labels - self.mean) / self.std).astype(np.float32)
        )

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """Class probabilities (N, C) or predictions in the label's units (N,)."""
        if self.class_weights is not None:
            shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        return outputs.reshape(len(outputs)) * self.std + self.mean


def inner_split(groups: Sequence[str], labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of (inner training, validation) within a training fold, split by subject (stratified by class
    when the label is constant within subjects)."""
    groups = [str(g) for g in groups]
    strata = [str(v) for v in labels]
    assignment = assign_subjects(
        groups,
        {"train": 1 - fraction, "validation": fraction},
        labels=strata if constant_within_subjects(groups, strata) else None,
        seed=seed,
    )
    is_validation = np.array([assignment[g] == "validation" for g in groups])
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def _train(
    model,
    train: datasets.Dataset,
    validation: datasets.Dataset,
    task: str,
    targets: _Targets,
    epochs: int,
    learning_rate: float,
    settings: HeadSettings,
    collator,
    seed: int,
    compute_loss_func=None,
) -> Trainer:
    """Train with selection on `validation`; the best epoch is in memory when this returns (checkpoints deleted)."""
    metric = "roc_auc" if task == "classification" else "r2"
    with tempfile.TemporaryDirectory(prefix="mnemodyn-head-") as folder:
        args = TrainingArguments(
            output_dir=folder,
            num_train_epochs=epochs,
            per_device_train_batch_size=settings.batch_size,
            per_device_eval_batch_size=64,
            learning_rate=learning_rate,
            weight_decay=settings.weight_decay,
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model=metric,
            greater_is_better=True,
            remove_unused_columns=False,
            report_to=[],
            use_cpu=not torch.cuda.is_available(),
            seed=seed,
            logging_strategy="no",
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=validation,
            data_collator=collator,
            compute_metrics=metrics_for_trainer(task, targets.mean, targets.std),
            callbacks=[EarlyStoppingCallback(settings.early_stopping_patience)],
            compute_loss_func=compute_loss_func,
        )
        trainer.remove_callback(PrinterCallback)  # no per-epoch metric dicts on the terminal
        trainer.train()
    return trainer


def frozen_head_scores(
    config: MnemoDynConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    groups_train: Sequence[str],
    x_test: np.ndarray,
    task: str,
    settings: HeadSettings,
    seed: int = 0,
) -> np.ndarray:
    """Train the head on pooled embeddings of the training fold; return test scores (see `_Targets.scores`)."""
    inner, validation = inner_split(groups_train, y_train, settings.validation_fraction, seed)
    targets = _Targets.of(np.asarray(y_train)[inner], task)
    torch.manual_seed(seed)
    model = PooledFeatureHead(config, targets.num_outputs, targets.class_weights)

    def rows(x, y):
        return datasets.Dataset.from_dict({"pooled": np.asarray(x, np.float32), "labels": y}).with_format("torch")

    validation_labels = targets.encode(np.asarray(y_train)[validation])
    with quiet_transformers():
        trainer = _train(
            model,
            rows(x_train[inner], targets.values),
            rows(x_train[validation], validation_labels),
            task,
            targets,
            settings.head_epochs,
            settings.head_learning_rate,
            settings,
            None,
            seed,
        )
        outputs = trainer.predict(rows(x_test, np.zeros(len(x_test), targets.values.dtype))).predictions
    return targets.scores(np.asarray(outputs))


def finetuned_scores(
    backbone: str | os.PathLike,
    series_train: Sequence[np.ndarray],
    y_train: np.ndarray,
    groups_train: Sequence[str],
    series_test: Sequence[np.ndarray],
    task: str,
    settings: HeadSettings,
    seed: int = 0,
) -> np.ndarray:
    """Fine-tune the whole task model (backbone unfrozen) on the training fold; return test scores."""
    inner, validation = inner_split(groups_train, y_train, settings.validation_fraction, seed)
    targets = _Targets.of(np.asarray(y_train)[inner], task)
    torch.manual_seed(seed)
    with quiet_transformers():  # a new head on a backbone: the missing head weights are expected
        if task == "classification":
            model = MnemoDynForSequenceClassification.from_pretrained(
                backbone,
                num_labels=targets.num_outputs,
                problem_type="single_label_classification",
                freeze_backbone=False,
            )
        else:
            model = MnemoDynForRegression.from_pretrained(backbone, num_targets=1, freeze_backbone=False)
    weighted = None
    if task == "classification":  # class-weighted cross-entropy, the weights from the inner training rows

        def weighted(outputs, labels, num_items_in_batch=None):
            return _loss(outputs.logits, labels, targets.class_weights)

    def rows(indices, y):
        return datasets.Dataset.from_dict({"bold": [series_train[i] for i in indices], "labels": y})

    train = rows(inner, targets.values)
    if settings.finetune_crop:  # validation and test runs are read whole
        train = train.with_transform(random_crops(model.config.context_length, seed))
    validation_labels = targets.encode(np.asarray(y_train)[validation])
    test = datasets.Dataset.from_dict(
        {"bold": list(series_test), "labels": np.zeros(len(series_test), targets.values.dtype)}
    )
    with quiet_transformers():
        trainer = _train(
            model,
            train,
            rows(validation, validation_labels),
            task,
            targets,
            settings.finetune_epochs,
            settings.finetune_learning_rate,
            settings,
            MnemoDynDataCollator(),
            seed,
            weighted,
        )
        outputs = trainer.predict(test).predictions
    outputs = outputs[0] if isinstance(outputs, tuple) else outputs
    return targets.scores(np.asarray(outputs))


__all__ = [
    "HeadSettings",
    "PooledFeatureHead",
    "finetuned_scores",
    "frozen_head_scores",
    "inner_split",
    "quiet_transformers",
]
