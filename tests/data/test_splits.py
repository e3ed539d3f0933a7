"""Subject-level splits: no subject in two splits, stable for a seed, stratified within one subject of exact."""

from __future__ import annotations

import random
from collections import Counter

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnemodyn_hf.data import assign_subjects, check_subject_disjoint, subject_kfold, subject_split


@st.composite
def cohorts(draw):
    """(subject of each run, subject-level label of each run, split fractions) of a random cohort."""
    num_subjects = draw(st.integers(1, 40))
    num_classes = draw(st.integers(1, 3))
    label_of = {f"s{i:02d}": draw(st.integers(0, num_classes - 1)) for i in range(num_subjects)}
    runs = [subject for subject in label_of for _ in range(draw(st.integers(1, 4)))]
    draw(st.randoms()).shuffle(runs)
    weights = draw(st.lists(st.integers(0, 10), min_size=1, max_size=4).filter(lambda w: sum(w) > 0))
    fractions = {f"split{i}": weight / sum(weights) for i, weight in enumerate(weights)}
    return runs, [label_of[subject] for subject in runs], fractions


@settings(max_examples=150, deadline=None)
@given(cohorts(), st.integers(0, 2**32 - 1), st.booleans())
def test_assignment_properties(cohort, seed, stratify):
    subjects, labels, fractions = cohort
    labels = labels if stratify else None
    assignment = assign_subjects(subjects, fractions, labels=labels, seed=seed)

    # Every subject gets exactly one split (so all of its runs land together), and only known splits.
    assert set(assignment) == set(subjects) and set(assignment.values()) <= set(fractions)

    # Stable for a seed, whatever the order of the runs.
    shuffled = list(zip(subjects, labels or [None] * len(subjects)))
    random.Random(seed).shuffle(shuffled)
    again = assign_subjects(
        [s for s, _ in shuffled], fractions, labels=labels and [label for _, label in shuffled], seed=seed
    )
    assert again == assignment

    # Each class's subjects are split within one subject of the exact fractions.
    label_of = dict(zip(subjects, labels or [None] * len(subjects)))
    for label, size in Counter(label_of.values()).items():
        counts = Counter(assignment[s] for s, own in label_of.items() if own == label)
        for name, fraction in fractions.items():
            assert abs(counts[name] - size * fraction) < 1, (label, name, counts, size, fraction)


def _cohort(subjects, labels):
    return datasets.Dataset.from_dict({"subject": subjects, "sex": labels, "row": list(range(len(subjects)))})


@settings(max_examples=25, deadline=None)
@given(cohorts(), st.integers(0, 1000))
def test_subject_split_never_puts_a_subject_in_two_splits(cohort, seed):
    subjects, labels, fractions = cohort
    splits = subject_split(_cohort(subjects, labels), fractions, stratify_by="sex", seed=seed)
    seen = [set(split["subject"]) for split in splits.values()]
    assert sum(map(len, seen)) == len(set(subjects))  # pairwise disjoint and complete
    assert sorted(row for split in splits.values() for row in split["row"]) == list(range(len(subjects)))
    for split in splits.values():
        assert split["row"] == sorted(split["row"])  # rows keep their order


def test_subject_split_is_seeded_and_defaults_to_train_validation_test():
    subjects = [f"s{i}" for i in range(50) for _ in range(2)]
    cohort = _cohort(subjects, ["F" if int(s[1:]) % 2 else "M" for s in subjects])
    first, again, other = (subject_split(cohort, seed=seed) for seed in (7, 7, 8))
    assert list(first) == ["train", "validation", "test"]
    assert {name: len(set(split["subject"])) for name, split in first.items()} == {
        "train": 40,
        "validation": 5,
        "test": 5,
    }
    assert all(first[name]["subject"] == again[name]["subject"] for name in first)
    assert first["test"]["subject"] != other["test"]["subject"]


def test_stratified_split_keeps_label_proportions():
    # 30 subjects with label 1, 70 with label 0, 1-3 runs each.
    subjects = [f"s{i:03d}" for i in range(100) for _ in range(i % 3 + 1)]
    labels = [int(int(s[1:]) < 30) for s in subjects]
    splits = subject_split(
        _cohort(subjects, labels), {"train": 0.6, "validation": 0.2, "test": 0.2}, stratify_by="sex", seed=0
    )
    for name, exact in {"train": (42, 18), "validation": (14, 6), "test": (14, 6)}.items():
        per_subject = dict(zip(splits[name]["subject"], splits[name]["sex"]))
        assert (Counter(per_subject.values())[0], Counter(per_subject.values())[1]) == exact


def test_stratifying_by_a_label_that_varies_within_a_subject_is_refused():
    with pytest.raises(ValueError, match=r"varies within a subject.*\['a'\]"):
        subject_split(_cohort(["a", "a", "b"], ["up", "down", "up"]), stratify_by="sex")


def test_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        subject_split(_cohort(["a", "b"], [0, 1]), {"train": 0.5, "test": 0.4})


def test_check_subject_disjoint_names_the_leaking_subjects():
    train = _cohort(["a", "b", "c", "c"], [0] * 4)
    test = _cohort(["c", "d", "a"], [0] * 3)
    with pytest.raises(ValueError, match=r"2 subject\(s\).*'a' in train, test; 'c' in train, test"):
        check_subject_disjoint({"train": train, "test": test})
    check_subject_disjoint({"train": train, "test": _cohort(["d"], [0])})


def test_grouped_kfold_holds_out_each_subject_once_with_balanced_classes():
    subjects = [f"s{i:02d}" for i in range(23) for _ in range(2)]
    labels = [int(s[1:]) % 3 for s in subjects]  # classes of 8, 8 and 7 subjects
    folds = subject_kfold(_cohort(subjects, labels), 4, stratify_by="sex", seed=1)
    held_out = [s for fold in folds for s in set(fold["validation"]["subject"])]
    assert sorted(held_out) == sorted(set(subjects))
    for fold in folds:
        assert not set(fold["train"]["subject"]) & set(fold["validation"]["subject"])
        assert len(fold["train"]) + len(fold["validation"]) == len(subjects)
        classes = Counter(dict(zip(fold["validation"]["subject"], fold["validation"]["sex"])).values())
        assert all(abs(classes[c] - n / 4) < 1 for c, n in {0: 8, 1: 8, 2: 7}.items())
