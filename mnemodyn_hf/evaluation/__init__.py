"""Downstream evaluation: named tasks, baselines on identical folds, statistics over subjects, reports.

The path through this package: `tasks` (what to predict, from which cohort) -> `folds` (outer folds by subject or
site) -> features (`embeddings` of the backbone, `connectivity` baselines) -> read-outs (`linear_models`, Trainer
`heads`) -> `statistics` (CIs, paired p-values) -> `report`. `harness.evaluate_backbone` runs it on a cohort,
`runner.evaluate_task` / `evaluate_cohort` by name or folder (the `mnemodyn evaluate` command).
"""

from .connectivity import TangentConnectivity, pearson_connectivity
from .embeddings import backbone_inputs, embed, pooled_input
from .folds import SPLIT_POLICIES, make_folds
from .harness import DEFAULT_METHODS, EvaluationSettings, evaluate_backbone
from .heads import HeadSettings
from .linear_models import fit_predict
from .metrics import classification_metrics, metrics_for_trainer, regression_metrics, roc_auc
from .runner import evaluate_cohort, evaluate_task
from .statistics import bootstrap_ci, paired_comparison, primary_metric
from .tasks import TASKS, TaskSpec, get_task

__all__ = [
    "DEFAULT_METHODS",
    "SPLIT_POLICIES",
    "TASKS",
    "EvaluationSettings",
    "HeadSettings",
    "TangentConnectivity",
    "TaskSpec",
    "backbone_inputs",
    "bootstrap_ci",
    "classification_metrics",
    "embed",
    "evaluate_backbone",
    "evaluate_cohort",
    "evaluate_task",
    "fit_predict",
    "get_task",
    "make_folds",
    "metrics_for_trainer",
    "paired_comparison",
    "pearson_connectivity",
    "pooled_input",
    "primary_metric",
    "regression_metrics",
    "roc_auc",
]
