"""Subject-level splits: every run and session of a subject lands in exactly one split.

The assignment works on the sorted set of subjects, so it depends only on the subjects (and their labels), the
fractions and the seed, never on the order of the rows. With `stratify_by`, subjects are dealt class by class:
in every split the number of subjects of each class is within one of its exact share (`n_class * fraction`);
the leftover subjects of a class go to the splits furthest below their overall target, so the split sizes stay
close to their fractions too. Grouped k-fold is the same assignment with `k` equal fractions.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence

import datasets
import numpy as np

#: The default train / validation / test fractions.
DEFAULT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def assign_subjects(
    subjects: Sequence[str],
    fractions: Mapping[str, float],
    *,
    labels: Sequence[Hashable] | None = None,
    seed: int = 0,
) -> dict[str, str]:
    """Map each distinct subject to a split name.

    Args:
        subjects: subject id of each row (repeats allowed: one entry per run).
        fractions: split name -> fraction of the subjects, summing to 1.
        labels: label of each row, constant within a subject (stratifies the assignment), or None.
        seed: seed of the shuffle of subjects within each class.
    """
    names = list(fractions)
    shares = np.array([fractions[name] for name in names], dtype=float)
    if len(names) == 0 or (shares < 0).any() or not math.isclose(shares.sum(), 1.0, abs_tol=1e-6):
        raise ValueError(f"Split fractions must be non-negative and sum to 1, got {dict(fractions)}.")
    shares = shares / shares.sum()

    subject_label = _subject_labels(subjects, labels)
    classes: dict[str, list[str]] = {}
    for subject in sorted(subject_label):
        classes.setdefault(repr(subject_label[subject]), []).append(subject)

    rng = np.random.default_rng(seed)
    assigned = np.zeros(len(names))
    seen = 0
    assignment: dict[str, str] = {}
    for key in sorted(classes):
        members = classes[key]
        exact = len(members) * shares
        counts = np.floor(exact + 1e-9)
        remainders = np.where(exact - counts > 1e-9, exact - counts, 0.0)
        leftover = len(members) - int(counts.sum())
        seen += len(members)
        # Leftover subjects go to splits with a fractional share (so every count stays within one of exact),
        # preferring the splits furthest below their target size, then the larger remainder.
        deficit = seen * shares - (assigned + counts)
        order = sorted(np.flatnonzero(remainders > 0), key=lambda split: (-deficit[split], -remainders[split], split))
        counts[order[:leftover]] += 1
        assigned += counts
        shuffled = [members[index] for index in rng.permutation(len(members))]
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        for split, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            assignment.update({subject: names[split] for subject in shuffled[start:stop]})
    return assignment


def subject_split(
    dataset: datasets.Dataset,
    fractions: Mapping[str, float] | None = None,
    *,
    stratify_by: str | None = None,
    seed: int = 0,
    subject_column: str = "subject",
) -> datasets.DatasetDict:
    """Split `dataset` by subject into a `DatasetDict` (default: train 0.8, validation 0.1, test 0.1).

    Rows keep their order within each split. `stratify_by` names a label column that is constant within a
    subject (a subject-level label such as diagnosis or sex).

    Example:
        >>> splits = subject_split(cohort, {"train": 0.7, "test": 0.3}, stratify_by="diagnosis", seed=0)
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    subjects = list(dataset[subject_column])
    labels = list(dataset[stratify_by]) if stratify_by is not None else None
    assignment = assign_subjects(subjects, fractions, labels=labels, seed=seed)
    rows: dict[str, list[int]] = {name: [] for name in fractions}
    for index, subject in enumerate(subjects):
        rows[assignment[subject]].append(index)
    splits = datasets.DatasetDict({name: dataset.select(indices) for name, indices in rows.items()})
    check_subject_disjoint(splits, subject_column=subject_column)
    return splits


def subject_kfold(
    dataset: datasets.Dataset,
    num_folds: int = 5,
    *,
    stratify_by: str | None = None,
    seed: int = 0,
    subject_column: str = "subject",
) -> list[datasets.DatasetDict]:
    """Grouped (and optionally stratified) k-fold by subject: `num_folds` `DatasetDict`s of train / validation.

    Each subject is in the validation split of exactly one fold.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}.")
    subjects = list(dataset[subject_column])
    labels = list(dataset[stratify_by]) if stratify_by is not None else None
    names = [str(fold) for fold in range(num_folds)]
    assignment = assign_subjects(subjects, dict.fromkeys(names, 1 / num_folds), labels=labels, seed=seed)
    fold_of_row = np.array([int(assignment[subject]) for subject in subjects])
    folds = []
    for fold in range(num_folds):
        splits = datasets.DatasetDict(
            train=dataset.select(np.flatnonzero(fold_of_row != fold)),
            validation=dataset.select(np.flatnonzero(fold_of_row == fold)),
        )
        check_subject_disjoint(splits, subject_column=subject_column)
        folds.append(splits)
    return folds


def check_subject_disjoint(splits: Mapping[str, datasets.Dataset], subject_column: str = "subject") -> None:
    """Raise `ValueError` naming every subject that appears in more than one split."""
    where: dict[str, list[str]] = {}
    for name, split in splits.items():
        for subject in sorted(set(split[subject_column])):
            where.setdefault(subject, []).append(name)
    leaks = {subject: names for subject, names in where.items() if len(names) > 1}
    if leaks:
        details = "; ".join(f"{subject!r} in {', '.join(names)}" for subject, names in sorted(leaks.items()))
        raise ValueError(f"Subject leakage: {len(leaks)} subject(s) appear in more than one split: {details}.")


def _subject_labels(subjects: Sequence[str], labels: Sequence[Hashable] | None) -> dict[str, Hashable]:
    if labels is None:
        return dict.fromkeys(subjects)
    if len(labels) != len(subjects):
        raise ValueError(f"Got {len(labels)} labels for {len(subjects)} rows.")
    seen: dict[str, set] = {}
    for subject, label in zip(subjects, labels):
        seen.setdefault(subject, set()).add(label)
    mixed = sorted(subject for subject, values in seen.items() if len(values) > 1)
    if mixed:
        raise ValueError(
            f"Cannot stratify by a label that varies within a subject (subjects {mixed[:5]} have several "
            "values); stratify by a subject-level label."
        )
    return {subject: next(iter(values)) for subject, values in seen.items()}


__all__ = ["DEFAULT_FRACTIONS", "assign_subjects", "check_subject_disjoint", "subject_kfold", "subject_split"]
