"""`evaluate_backbone`: one backbone against the baselines on identical outer folds, with honest statistics.

Protocol:
1. Subjects the backbone was pretrained on (its `pretraining_subjects.json`) are dropped first. Outer folds by
   subject or site (`folds.make_folds`), checked for subject leakage; every training fold must hold every class.
2. Methods, each fitted on the training rows of a fold only and scored once on its test rows:
   `mnemodyn_linear_probe` (pooled frozen embeddings -> linear model), `mnemodyn_head` (frozen backbone + the task
   model's MLP head, `Trainer`), `mnemodyn_finetune` (the whole task model, `Trainer`), the second-order and latent
   read-outs of the frozen backbone (`mnemodyn_correlation_probe` / `mnemodyn_tangent_probe`: Pearson / tangent
   connectivity of its output -> linear model; `mnemodyn_correlation_head`: the task model's MLP head on that
   Pearson connectivity, as `head_pooling="correlation"` reads it; `mnemodyn_update_tangent`: tangent connectivity
   of output - input; `mnemodyn_latent_probe`: mean|std of its last layer's latent channels),
   `random_backbone_correlation` / `random_backbone_tangent` / `random_backbone_update_tangent` (the random backbone
   read the same ways), `fc_pearson`, `fc_tangent` (connectivity -> linear model), `pooled_input` (the identity
   backbone: ROI mean|std of the backbone's input),
   `random_backbone` (the same architecture with random weights, linear probe), and confound controls
   (`control_motion`: mean framewise displacement alone; `control_position`: the epoch's position in the run alone;
   `control_sd`: the epoch's mean within-epoch standard deviation alone; `control_motion_within_site`: mean
   framewise displacement centered within each site, `tasks.site_centered_control`).
   With `EvaluationSettings.regress_out` naming cohort columns (e.g. `("func_mean_fd",)`), every feature read-out
   (linear models and frozen heads; not fine-tuning, not the controls) reads features with those confounds
   regressed out within each fold: a linear regression of every feature column on the confounds (with intercept)
   fitted on the training rows only, its fitted part subtracted from training and test rows (`regress_out`).
   Inner model selection is grouped like the outer split: linear models choose their penalty by an inner CV grouped
   by site when sites are held out (by subject otherwise), and Trainer read-outs select their epoch on an inner
   validation split of training sites (of subjects otherwise). A training fold whose sites cannot form such a split
   (fewer than 2 sites, a class in fewer than 2 of them, a validation part without every class) falls back to
   subjects, which `folds[i]["inner_groups"]` records.
3. Out-of-fold predictions are pooled; when the label is constant within a subject, each subject's rows are averaged
   into one prediction. The headline metric (ROC-AUC or Pearson r), its 95 % CI and the paired comparisons are at
   the unit that generalizes: the site when sites are held out (leave-site-out, external-sites), else the subject
   (`inference.summarise`). One read-out per task is primary (`primary_method`); the others are secondary.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..configuration_mnemodyn import MnemoDynConfig
from ..modeling_mnemodyn import MnemoDynModel
from .confounds import confound_matrix, regress_out
from .connectivity import pearson_connectivity
from .designs import deconfounded, linear_design, regresses
from .embeddings import backbone_inputs, backbone_states, pooled_input
from .folds import centre_within_folds, make_folds, without_pretraining_subjects
from .heads import HeadSettings, finetuned_scores, frozen_head_scores, inner_split, quiet_transformers
from .inference import REFERENCE_METHOD, summarise
from .linear_models import fit_predict
from .methods import (
    BACKBONE_METHODS,
    BASELINE_METHODS,
    DEFAULT_METHODS,
    HEAD_FEATURES,
    LINEAR_METHODS,
    PRETRAINED_STATE_METHODS,
    RANDOM_STATE_METHODS,
    SITE_SPLITS,
    STATE_METHODS,
    TRAINER_METHODS,
)
from .permutation import permutation_null, permuted_labels
from .tasks import encode_labels


@dataclass(frozen=True)
class EvaluationSettings:
    """What to run: `methods` (controls are added from the task), bootstrap size, seed, Trainer settings, and how
    runs are scaled for the backbone (`normalization`, one of `embeddings.NORMALIZATIONS`)."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    num_bootstrap: int = 2000
    seed: int = 0
    heads: HeadSettings = field(default_factory=HeadSettings)
    embedding_batch_size: int = 8
    normalization: str = "pretraining"
    #: Cohort columns regressed out of every feature read-out within each fold (training rows only); see
    #: `regress_out`. Empty: none.
    regress_out: tuple[str, ...] = ()
    #: Label permutations of the linear read-outs' null (`permutation`); 0: none.
    label_permutations: int = 0


def evaluate_backbone(
    cohort: datasets.Dataset,
    *,
    label: str,
    task_type: str,
    backbone: str | os.PathLike,
    split: str,
    train_sites: Sequence[str] = (),
    controls: Mapping[str, Callable[[datasets.Dataset], np.ndarray]] | None = None,
    settings: EvaluationSettings | None = None,
    score_within_folds: bool = False,
    primary_method: str = REFERENCE_METHOD,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Score `backbone` and the baselines on `cohort` (cohort schema + `label`); see the module docstring.

    `controls` maps a name to the function giving that control's features (N, K) from the cohort (e.g.
    `tasks.column_control("func_mean_fd")`); each is scored as `control_<name>` with the linear read-out.
    `settings.normalization` is how runs are scaled for the backbone (`embeddings.NORMALIZATIONS`); the report
    states it. `score_within_folds` (regression) centres targets
    and predictions within each test fold before pooling, so that offsets between test sites cannot pass for
    prediction. `primary_method` is the read-out declared primary (a task's `TaskSpec.primary_method`).

    Returns:
        (report, predictions): the JSON-ready report (`methods` -> metric, value, ci95, per_group, ...,
        `comparisons`; see `inference`) and the pooled out-of-fold scores per method over the scored units (plus
        `unit`, `fold`, `label` arrays).
    """
    settings = settings or EvaluationSettings()
    unknown = sorted(set(settings.methods) - set(DEFAULT_METHODS))
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; choose from {DEFAULT_METHODS}.")
    if primary_method not in DEFAULT_METHODS:
        raise ValueError(f"Unknown primary method {primary_method!r}; choose from {DEFAULT_METHODS}.")
    if label not in cohort.column_names:
        raise ValueError(
            f"The cohort has no label column {label!r}; its columns are {cohort.column_names}. Pass "
            "--label with one of them."
        )
    with_label = [i for i, value in enumerate(cohort[label]) if value is not None and value == value]
    dropped = len(cohort) - len(with_label)
    cohort = cohort.select(with_label) if dropped else cohort
    cohort, pretrained_on = without_pretraining_subjects(cohort, backbone)
    y, classes = encode_labels(list(cohort[label]), task_type)
    subjects = np.asarray(cohort["subject"], dtype=object)
    sites = np.asarray([str(site) for site in cohort["site"]], dtype=object)
    folds = make_folds(
        split, subjects, cohort["site"], y if classes else None, train_sites=train_sites, seed=settings.seed
    )
    if classes:
        for fold in folds:
            present = sorted(set(y[fold.train]))
            if len(present) < len(classes):
                raise ValueError(
                    f"The training rows of fold {fold.name!r} hold only class(es) {[classes[c] for c in present]} of "
                    f"{classes}; a classifier cannot be fitted. Use a stratified split (site-stratified-5fold or "
                    "subject-5fold) or drop the sites with a single class."
                )

    confounds = confound_matrix(cohort, settings.regress_out)
    config = MnemoDynConfig.from_pretrained(backbone)
    bold = list(cohort.with_format("numpy")["bold"])
    features, notes = _fold_free_features(cohort, bold, backbone, config, settings)
    features.update({f"control_{name}": extract(cohort) for name, extract in (controls or {}).items()})
    methods = [*settings.methods, *(f"control_{name}" for name in controls or {})]
    scores = {m: np.full((len(y), len(classes)) if classes and len(classes) > 2 else len(y), np.nan) for m in methods}
    fold_of_row = np.empty(len(y), dtype=object)
    inner_groups, linear_groups = {}, {}
    for fold in tqdm(folds, desc=f"Folds ({split})"):
        fold_of_row[fold.test] = fold.name
        groups, inner_groups[fold.name] = _inner_groups(fold, subjects, sites, y, split, task_type, methods, settings)
        linear_groups[fold.name] = groups["linear"]
        for method in methods:
            scores[method][fold.test] = _fold_scores(
                method, fold, features, bold, y, groups, task_type, backbone, config, settings, confounds
            )
    tested = np.array([name is not None for name in fold_of_row])  # external-sites: training sites are never tested
    scores = {method: values[tested] for method, values in scores.items()}
    targets, tested_folds = y[tested], fold_of_row[tested]
    if score_within_folds and task_type == "regression":
        targets = centre_within_folds(targets, tested_folds)
        scores = {method: centre_within_folds(values, tested_folds) for method, values in scores.items()}
    report, predictions = summarise(
        scores,
        targets,
        subjects[tested],
        tested_folds,
        sites[tested] if split in SITE_SPLITS else None,
        task_type,
        num_bootstrap=settings.num_bootstrap,
        seed=settings.seed,
        primary_method=primary_method,
    )
    report["scored_within_folds"] = bool(score_within_folds and task_type == "regression")
    if settings.label_permutations and not report["scored_within_folds"]:
        strata = sites if split in SITE_SPLITS else None
        labels = permuted_labels(y, subjects, strata, settings.label_permutations, settings.seed)
        for method in (m for m in methods if m in LINEAR_METHODS):
            result = report["methods"][method]
            result["permutation_null"] = permutation_null(
                method, folds, linear_groups, features, bold, confounds, labels, tested, subjects[tested],
                None if strata is None else sites[tested], task_type, result["estimate"], settings.seed,
            )  # fmt: skip
    report.update(
        {
            "label": label,
            "task_type": task_type,
            "classes": classes,
            "split": split,
            "backbone": str(backbone),
            "backbone_repetition_time": config.repetition_time,
            "reference_method": REFERENCE_METHOD,
            "rows": len(y),
            "subjects": len(set(subjects)),
            "dropped_rows_without_label": dropped,
            "confounds_regressed": list(settings.regress_out),
            "confounds_regressed_from": sorted(m for m in methods if regresses(m)) if settings.regress_out else [],
            "excluded_pretraining_subjects": pretrained_on,
            "folds": [
                {
                    "name": f.name,
                    "train_subjects": len(set(subjects[f.train])),
                    "test_subjects": len(set(subjects[f.test])),
                    "inner_groups": inner_groups[f.name],
                }
                for f in folds
            ],
            **notes,
        }
    )
    return report, predictions


def _updates(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> list[np.ndarray]:
    """What the backbone adds to each run: its output minus its input, (T, R) each."""
    return [output - given for output, given in zip(outputs, inputs, strict=True)]


def _fold_free_features(cohort, bold, backbone, config, settings) -> tuple[dict[str, np.ndarray], dict]:
    """Features that need no fitting (computed once): backbone inputs, embeddings, pooled input, Pearson FC."""
    methods, features, notes = set(settings.methods), {}, {}
    if methods & (set(BACKBONE_METHODS) | set(STATE_METHODS) | {"pooled_input", "random_backbone"}):
        prepared = backbone_inputs(bold, cohort["tr"], backbone, config, normalization=settings.normalization)
        notes.update(normalization=prepared.normalization, resampled_runs=prepared.resampled_runs)
        features["backbone_series"] = prepared.series
        if methods & PRETRAINED_STATE_METHODS:
            with quiet_transformers():
                model = MnemoDynModel.from_pretrained(backbone)
            states = backbone_states(model, prepared.series, settings.embedding_batch_size, "Embedding (pretrained)")
            features.update(
                embedding=states.pooled,
                hidden_series=states.hidden,
                update_series=_updates(states.hidden, prepared.series),
                mnemodyn_correlation_probe=pearson_connectivity(states.hidden),
                mnemodyn_latent_probe=pooled_input(states.latent),
            )
        if methods & RANDOM_STATE_METHODS:
            torch.manual_seed(settings.seed)
            random_states = backbone_states(
                MnemoDynModel(config), prepared.series, settings.embedding_batch_size, "Embedding (random)"
            )
            features["random_backbone"] = random_states.pooled
            features["random_backbone_correlation"] = pearson_connectivity(random_states.hidden)
            features["random_hidden_series"] = random_states.hidden
            features["random_update_series"] = _updates(random_states.hidden, prepared.series)
        if "pooled_input" in methods:
            features["pooled_input"] = pooled_input(prepared.series)
    if "fc_pearson" in methods:
        features["fc_pearson"] = pearson_connectivity(bold)
    return features, notes


def _inner_groups(fold, subjects, sites, y, split, task_type, methods, settings) -> tuple[dict, dict[str, str]]:
    """The inner-selection groups of a fold's training rows, for the linear models' inner CV (`"linear"`) and the
    Trainer read-outs' validation split (`"heads"`), and their names: the training sites under a site split when they
    can form that split, else the subjects (see the module docstring)."""
    train_sites, train_subjects, y_train = sites[fold.train], subjects[fold.train], y[fold.train]
    chosen = {"linear": train_subjects, "heads": train_subjects}
    if split not in SITE_SPLITS or len(set(train_sites)) < 2:
        keys = chosen if set(methods) & set(TRAINER_METHODS) else ("linear",)
        return chosen, dict.fromkeys(keys, "subject")
    if task_type != "classification" or all(len(set(train_sites[y_train == c])) >= 2 for c in set(y_train)):
        chosen["linear"] = train_sites
    if set(methods) & set(TRAINER_METHODS):
        inner, validation = inner_split(train_sites, y_train, settings.heads.validation_fraction, settings.seed)
        holds_every_class = task_type != "classification" or (
            set(y_train[inner]) == set(y_train[validation]) == set(y_train)
        )
        if len(inner) and len(validation) and holds_every_class:
            chosen["heads"] = train_sites
    names = {key: "site" if values is train_sites else "subject" for key, values in chosen.items()}
    return chosen, names if set(methods) & set(TRAINER_METHODS) else {"linear": names["linear"]}


def _fold_scores(
    method, fold, features, bold, y, groups, task_type, backbone, config, settings, confounds=None
) -> np.ndarray:
    """Test scores of one method on one fold (class-1 probability for binary tasks); `groups` from
    `_inner_groups`; `confounds` (N, C) regressed out of the features within the fold (`regress_out`), or None."""

    if method in HEAD_FEATURES:
        pooling, feature = HEAD_FEATURES[method]
        head_train, head_test = deconfounded(
            method, fold, features[feature][fold.train], features[feature][fold.test], confounds
        )
        scores = frozen_head_scores(
            MnemoDynConfig.from_dict({**config.to_dict(), "head_pooling": pooling, "head_pooling_components": None}),
            head_train,
            y[fold.train],
            groups["heads"],
            head_test,
            task_type,
            settings.heads,
            settings.seed,
        )
    elif method == "mnemodyn_finetune":
        series = features["backbone_series"]
        scores = finetuned_scores(
            backbone,
            [series[i] for i in fold.train],
            y[fold.train],
            groups["heads"],
            [series[i] for i in fold.test],
            task_type,
            settings.heads,
            settings.seed,
        )
    else:
        x_train, x_test = linear_design(method, fold, features, bold, confounds)
        scores = fit_predict(x_train, y[fold.train], groups["linear"], x_test, task_type, settings.seed)
    if task_type == "classification" and scores.ndim == 2 and scores.shape[1] == 2:
        return scores[:, 1]
    return scores


__all__ = [
    "BACKBONE_METHODS",
    "BASELINE_METHODS",
    "DEFAULT_METHODS",
    "REFERENCE_METHOD",
    "SITE_SPLITS",
    "EvaluationSettings",
    "confound_matrix",
    "evaluate_backbone",
    "regress_out",
]
