"""Entry points of `mnemodyn evaluate`: a named task, or any saved cohort with a label.

report = evaluate_task("abide-dx", "runs/abide/model", "eval/abide-dx", data="../shared/data/abide_dev")
report = evaluate_cohort("my_cohort/", "diagnosis", "classification", "runs/x/model", "eval/x", groups="site")
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import datasets

from ..data.schema import check_cohort_features
from .harness import REFERENCE_METHOD, EvaluationSettings, evaluate_backbone
from .report import write_evaluation, write_reconstruction
from .tasks import RECONSTRUCTION_TASKS, get_task


def evaluate_task(
    name: str,
    backbone: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    data: str | None = None,
    split: str | None = None,
    settings: EvaluationSettings | None = None,
) -> dict:
    """Run the named task (`tasks.TASKS`, or one of `tasks.RECONSTRUCTION_TASKS`) with `split` (default: the task's
    first) and write the outputs."""
    if name in RECONSTRUCTION_TASKS:
        from .reconstruction import evaluate_reconstruction

        task = RECONSTRUCTION_TASKS[name]
        settings = settings or EvaluationSettings()
        report = evaluate_reconstruction(
            backbone, task.load(data), seed=settings.seed, num_bootstrap=settings.num_bootstrap
        )
        report = {"task": name, "description": task.description, **report}
        write_reconstruction(report, output_dir)
        return report
    spec = get_task(name)
    split = split or spec.splits[0]
    if split not in spec.splits:
        raise ValueError(f"Task {name} is scored with splits {spec.splits}, not {split!r}.")
    cohort = spec.load(data)
    if spec.normalised_per_run:
        settings = dataclasses.replace(settings or EvaluationSettings(), normalization="none")
    report, predictions = evaluate_backbone(
        cohort,
        label=spec.label,
        task_type=spec.task_type,
        backbone=backbone,
        split=split,
        train_sites=spec.train_sites,
        controls=spec.controls,
        settings=settings,
        score_within_folds=spec.score_within_sites,
        primary_method=spec.primary_method,
    )
    report = {"task": name, "description": spec.description, "anchor": spec.anchor, **report}
    write_evaluation(report, predictions, output_dir)
    return report


def evaluate_cohort(
    cohort_dir: str | os.PathLike,
    label: str,
    task_type: str,
    backbone: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    groups: str | None = None,
    settings: EvaluationSettings | None = None,
    primary_method: str = REFERENCE_METHOD,
) -> dict:
    """Evaluate on a cohort saved with `Dataset.save_to_disk`: leave-one-`groups`-out folds when `groups` names a
    column (e.g. "site"; the groups are then the unit of the CIs and tests), otherwise 5 folds by subject.
    `primary_method` is the read-out reported as primary (default: the linear probe)."""
    if not Path(cohort_dir).is_dir():
        raise FileNotFoundError(f"{cohort_dir} is not a folder written by datasets.Dataset.save_to_disk.")
    cohort = datasets.load_from_disk(str(cohort_dir))
    check_cohort_features(cohort.features)
    split = "subject-5fold"
    if groups is not None:
        if groups not in cohort.column_names:
            raise ValueError(f"--groups {groups!r} is not a column of the cohort; columns: {cohort.column_names}.")
        if groups != "site":
            cohort = cohort.remove_columns("site").add_column("site", [str(v) for v in cohort[groups]])
        split = "leave-site-out"
    report, predictions = evaluate_backbone(
        cohort,
        label=label,
        task_type=task_type,
        backbone=backbone,
        split=split,
        settings=settings,
        primary_method=primary_method,
    )
    report = {"task": f"{Path(cohort_dir).name}:{label}", **report}
    write_evaluation(report, predictions, output_dir)
    return report


__all__ = ["evaluate_cohort", "evaluate_task"]
