"""Outer folds of an evaluation, by subject or by site, checked for subject leakage.

| policy | folds |
|---|---|
| `leave-site-out` | one fold per site: train on the other sites, test on it |
| `site-stratified-5fold` | 5 folds of subjects, each site (and each class within a site) spread evenly |
| `subject-5fold` | 5 folds of subjects (stratified by class when the label is constant within subjects) |
| `external-sites` | train on the task's training sites, test on each other site in turn (external validation) |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np

from ..data.splits import assign_subjects
from ..hub import read_pretraining_subjects

SPLIT_POLICIES = ("leave-site-out", "site-stratified-5fold", "subject-5fold", "external-sites")
NUM_FOLDS = 5


@dataclass(frozen=True)
class Fold:
    """Row indices of one outer fold and its name (the held-out site, or the fold number)."""

    name: str
    train: np.ndarray
    test: np.ndarray


def make_folds(
    policy: str,
    subjects: Sequence[str],
    sites: Sequence[str],
    labels: Sequence | None = None,
    *,
    train_sites: Sequence[str] = (),
    seed: int = 0,
) -> list[Fold]:
    """The outer folds of `policy` over rows with these `subjects`, `sites` and (class) `labels`.

    Raises:
        ValueError: unknown policy; a subject in more than one site under a site policy, or in the training and
            the test rows of a fold.
    """
    subjects, sites = np.asarray(subjects, dtype=object), np.asarray(sites, dtype=object)
    if policy not in SPLIT_POLICIES:
        raise ValueError(f"Unknown split policy {policy!r}; choose one of {SPLIT_POLICIES}.")
    if policy == "leave-site-out":
        names = sorted(set(sites))
        if len(names) < 2:
            raise ValueError(f"leave-site-out needs at least 2 sites, the cohort has {names}; use subject-5fold.")
        folds = [Fold(site, np.flatnonzero(sites != site), np.flatnonzero(sites == site)) for site in names]
    elif policy == "external-sites":
        if not train_sites:
            raise ValueError("external-sites needs the training sites (the task's `train_sites`).")
        train = np.isin(sites, list(train_sites))
        if not train.any() or train.all():
            raise ValueError(
                f"external-sites: training sites {list(train_sites)} leave no training or no test "
                f"rows among sites {sorted(set(sites))}."
            )
        folds = [
            Fold(site, np.flatnonzero(train), np.flatnonzero(sites == site)) for site in sorted(set(sites[~train]))
        ]
    else:
        strata = _strata(policy, subjects, sites, labels)
        assignment = assign_subjects(
            list(subjects), dict.fromkeys(map(str, range(NUM_FOLDS)), 1 / NUM_FOLDS), labels=strata, seed=seed
        )
        fold_of_row = np.array([int(assignment[s]) for s in subjects])
        folds = [
            Fold(str(k), np.flatnonzero(fold_of_row != k), np.flatnonzero(fold_of_row == k)) for k in range(NUM_FOLDS)
        ]
    for fold in folds:
        check_fold_disjoint(fold, subjects)
    return folds


def _strata(policy: str, subjects: np.ndarray, sites: np.ndarray, labels: Sequence | None) -> list[str] | None:
    """Subject-level strata: site (+ class) for site-stratified folds, class for subject folds, when constant."""
    keys = [str(site) for site in sites] if policy == "site-stratified-5fold" else [""] * len(subjects)
    if labels is not None:
        with_label = [f"{key}|{label}" for key, label in zip(keys, labels)]
        if constant_within_subjects(subjects, with_label):
            keys = with_label
    if not constant_within_subjects(subjects, keys):
        raise ValueError("A subject appears at more than one site; site-stratified folds need one site per subject.")
    return keys if any(keys) else None


def constant_within_subjects(subjects: Sequence[str], values: Sequence) -> bool:
    """Whether every subject's rows carry one value (a subject-level label or stratum)."""
    seen: dict[str, object] = {}
    return all(seen.setdefault(s, v) == v for s, v in zip(subjects, values))


def check_fold_disjoint(fold: Fold, subjects: np.ndarray) -> None:
    """Raise `ValueError` naming the subjects found in both the training and the test rows of `fold`."""
    shared = sorted(set(subjects[fold.train]) & set(subjects[fold.test]))
    if shared:
        raise ValueError(
            f"Subject leakage in fold {fold.name!r}: {len(shared)} subject(s) in both training and test rows "
            f"({shared[:5]}). A subject scanned at several sites must keep one site: fix the cohort's `site` column, "
            "or split by subject (subject-5fold)."
        )


def without_pretraining_subjects(cohort: datasets.Dataset, backbone) -> tuple[datasets.Dataset, int]:
    """Drop the rows of subjects the backbone was pretrained on (its `pretraining_subjects.json`, training and
    validation alike): every number is then on subjects the backbone never saw. Returns the cohort and how many
    subjects were dropped."""
    split = read_pretraining_subjects(backbone)
    if not split:
        return cohort, 0
    seen = {str(subject) for subjects in split.values() for subject in subjects}
    subjects = [str(subject) for subject in cohort["subject"]]
    keep = [i for i, subject in enumerate(subjects) if subject not in seen]
    if not keep:
        raise ValueError(
            f"Every subject of this cohort was in the pretraining of {backbone} ({len(seen)} subjects in its "
            "pretraining_subjects.json): pretrain on other subjects (e.g. other sites) to evaluate on these."
        )
    dropped = len(set(subjects) & seen)
    return (cohort.select(keep) if len(keep) < len(cohort) else cohort), dropped


def centre_within_folds(values: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """`values` minus their mean within each fold (so offsets between test folds cannot pass for prediction)."""
    centred = np.asarray(values, dtype=np.float64).copy()
    for name in set(folds):
        centred[folds == name] -= centred[folds == name].mean(axis=0)
    return centred


__all__ = [
    "NUM_FOLDS",
    "SPLIT_POLICIES",
    "Fold",
    "centre_within_folds",
    "check_fold_disjoint",
    "constant_within_subjects",
    "make_folds",
    "without_pretraining_subjects",
]
