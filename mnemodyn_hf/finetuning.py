"""The downstream protocol, in code: subject-level splits, model selection on validation only, class weights
after the split, several seeds, heads scored in eval mode, and the FC baseline on the same splits.

    report = evaluate_downstream(windows, "labels", backbone="mnemodyn-hcp", task="classification")

Per seed: `subject_split` -> train / validation / test (checked disjoint by subject); the head trains with
`transformers.Trainer` on train, is evaluated on validation every epoch, and the best validation checkpoint is
kept (early stopping on validation); the test split is scored once, after training, in eval mode. Regression
targets are z-scored with the training split's mean and standard deviation, and metrics are reported in the
original units. The FC baseline (Fisher-z correlations -> logistic / ridge regression) is fitted on the same
training split and scored on the same test split.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import datasets
import numpy as np
import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments

from .configuration_mnemodyn import MnemoDynConfig
from .data.collator import MnemoDynDataCollator
from .data.splits import check_subject_disjoint, subject_split
from .evaluation import classification_metrics, fc_baseline, metrics_for_trainer, regression_metrics
from .modeling_heads import MnemoDynForRegression, MnemoDynForSequenceClassification

SELECTION_METRIC = {"classification": "roc_auc", "regression": "r2"}


@dataclass
class DownstreamSettings:
    """Training settings of [`evaluate_downstream`]."""

    seeds: Sequence[int] = (0, 1, 2)
    fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.6, "validation": 0.2, "test": 0.2})
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    early_stopping_patience: int = 5


class _EvaluationLog(TrainerCallback):
    """Records the metric names of every evaluation, to show the test split never informs selection."""

    def __init__(self):
        self.evaluations: list[list[str]] = []

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.evaluations.append(sorted(metrics or {}))


def _weighted_cross_entropy(weights: torch.Tensor):
    def loss(outputs, labels, num_items_in_batch=None):
        return torch.nn.functional.cross_entropy(outputs.logits, labels.long(), weight=weights.to(outputs.logits))

    return loss


def _build_model(task: str, backbone: str | os.PathLike | MnemoDynConfig, num_outputs: int,
                 adapter_input_rois: int | None):  # fmt: skip
    """A task model with a new head on `backbone`, behind a ROI adapter when `adapter_input_rois` is set."""
    if task == "classification":
        cls, overrides = MnemoDynForSequenceClassification, {"num_labels": num_outputs, "problem_type": "single_label_classification"}
    else:
        cls, overrides = MnemoDynForRegression, {"num_targets": num_outputs}
    overrides["adapter_input_rois"] = adapter_input_rois
    if isinstance(backbone, MnemoDynConfig):
        config = MnemoDynConfig(**{**backbone.to_diff_dict(), **overrides})
        return cls(config)
    return cls.from_pretrained(backbone, **overrides)


def evaluate_downstream(
    cohort: datasets.Dataset,
    label_column: str,
    backbone: str | os.PathLike | MnemoDynConfig,
    task: str,
    output_dir: str | os.PathLike,
    settings: DownstreamSettings | None = None,
) -> dict:
    """Run the protocol; return per-seed and mean +- sd metrics of the model and the FC baseline.

    Args:
        cohort: rows with `bold` (T, R) normalised series, `subject` and `label_column` (class index or target).
        label_column: the label.
        backbone: a pretrained MnemoDyn folder (its backbone weights are loaded, the head is new) or a config.
            When the cohort's ROI count differs from the backbone's (another atlas), a linear ROI adapter is
            trained with the head (`config.adapter_input_rois`).
        task: "classification" or "regression".
        output_dir: Trainer output folder (one subfolder per seed).
    """
    if task not in SELECTION_METRIC:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")
    settings = settings or DownstreamSettings()
    data_rois = np.asarray(cohort[0]["bold"]).shape[-1]
    backbone_rois = (backbone if isinstance(backbone, MnemoDynConfig) else MnemoDynConfig.from_pretrained(backbone)).num_rois
    adapter_input_rois = None if data_rois == backbone_rois else data_rois  # another atlas: a ROI adapter
    per_seed = []
    for seed in settings.seeds:
        splits = subject_split(cohort, settings.fractions, seed=seed)
        check_subject_disjoint(splits)
        data = {name: split.rename_column(label_column, "labels").with_format("numpy") for name, split in splits.items()}
        train_labels = np.asarray(data["train"]["labels"])
        trainer_kwargs, metric_kwargs = {}, {}
        if task == "classification":
            num_outputs = int(train_labels.max()) + 1  # classes from the training split only: test labels stay unseen
            counts = np.bincount(train_labels.astype(int), minlength=num_outputs).astype(np.float64)
            weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / num_outputs, dtype=torch.float32)
            trainer_kwargs["compute_loss_func"] = _weighted_cross_entropy(weights)  # imbalance, from train only
        else:
            train_targets = train_labels.reshape(len(train_labels), -1).astype(np.float64)
            mean, std = train_targets.mean(0), np.where(train_targets.std(0) > 0, train_targets.std(0), 1.0)
            data = {name: split.map(lambda row: {"labels": (np.asarray(row["labels"], np.float64) - mean) / std})
                    for name, split in data.items()}  # fmt: skip
            num_outputs, metric_kwargs = train_targets.shape[1], {"target_mean": mean, "target_std": std}
        torch.manual_seed(seed)
        model = _build_model(task, backbone, num_outputs, adapter_input_rois)
        metric = SELECTION_METRIC[task]
        log = _EvaluationLog()
        args = TrainingArguments(
            output_dir=os.path.join(output_dir, f"seed-{seed}"), num_train_epochs=settings.epochs,
            per_device_train_batch_size=settings.batch_size, per_device_eval_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate, weight_decay=settings.weight_decay, eval_strategy="epoch",
            save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
            metric_for_best_model=metric, greater_is_better=True, remove_unused_columns=False, report_to=[],
            use_cpu=not torch.cuda.is_available(), seed=seed, logging_strategy="epoch", disable_tqdm=True,
        )  # fmt: skip
        trainer = Trainer(
            model=model, args=args, train_dataset=data["train"], eval_dataset=data["validation"],
            data_collator=MnemoDynDataCollator(), compute_metrics=metrics_for_trainer(task, **metric_kwargs),
            callbacks=[EarlyStoppingCallback(settings.early_stopping_patience), log], **trainer_kwargs,
        )  # fmt: skip
        trainer.train()
        selection_evaluations = list(log.evaluations)
        test = trainer.evaluate(data["test"], metric_key_prefix="test")  # once, after selection, in eval mode
        model_metrics = {key.removeprefix("test_"): value for key, value in test.items()
                         if key.removeprefix("test_") in ("accuracy", "macro_f1", "roc_auc", "mse", "mae", "r2", "pearson_r")}  # fmt: skip
        raw = {name: splits[name] for name in ("train", "test")}
        baseline_out = fc_baseline(list(raw["train"].with_format("numpy")["bold"]), np.asarray(raw["train"][label_column]),
                                   list(raw["test"].with_format("numpy")["bold"]), task, seed=seed)  # fmt: skip
        test_labels = np.asarray(raw["test"][label_column])
        baseline = (classification_metrics(test_labels, baseline_out) if task == "classification"
                    else regression_metrics(test_labels, baseline_out))  # fmt: skip
        per_seed.append({
            "seed": seed, "model": model_metrics, "fc_baseline": baseline,
            "subjects": {name: sorted(set(split["subject"])) for name, split in splits.items()},
            "selection_evaluations": selection_evaluations,
        })  # fmt: skip
    summary = {}
    for who in ("model", "fc_baseline"):
        names = per_seed[0][who]
        summary[who] = {name: (float(np.mean([s[who][name] for s in per_seed])), float(np.std([s[who][name] for s in per_seed])))
                        for name in names}  # fmt: skip
    return {"task": task, "label": label_column, "data_rois": data_rois, "roi_adapter": adapter_input_rois is not None,
            "per_seed": per_seed, "mean_sd": summary}  # fmt: skip


__all__ = ["DownstreamSettings", "evaluate_downstream"]
