"""Brainmarks cohorts in the cohort schema, without rewriting their data.

Brainmarks (MedARC's fMRI foundation-model evaluation suite) stores each cohort as a `DatasetDict.save_to_disk`
folder with `train` / `validation` / `test` splits. Its columns map to ours as follows:

| Brainmarks | here | note |
|---|---|---|
| `bold`: `Array2D((None, R), "float16")` | `bold` | accepted as is; Brainmarks z-scores each ROI and stores float16 |
| `mean`, `std`: `Array2D((1, R), "float32")` | kept | the original signal is `bold * std + mean` |
| `tr`: `Value("float32")` | `tr` | same |
| `sub` | `subject` | renamed (a metadata change only) |
| `site` (ABIDE, ADHD-200) | `site` | added as "" where absent, like `session` and `run` |
| `path`, `n_frames`, `start`, `end`, `dataset`, targets | kept | extra columns (most targets: a JSON map by `sub`) |
"""

from __future__ import annotations

import os

import datasets

from .schema import ID_COLUMNS, check_cohort_features
from .splits import check_subject_disjoint


def from_brainmarks(cohort: datasets.Dataset | datasets.DatasetDict) -> datasets.Dataset | datasets.DatasetDict:
    """Adapt a Brainmarks `Dataset` / `DatasetDict` to the cohort schema; splits are checked for subject leakage."""
    if isinstance(cohort, datasets.DatasetDict):
        adapted = datasets.DatasetDict({name: from_brainmarks(split) for name, split in cohort.items()})
        check_subject_disjoint(adapted)
        return adapted
    if "sub" in cohort.column_names and "subject" not in cohort.column_names:
        cohort = cohort.rename_column("sub", "subject")
    for column in ID_COLUMNS:
        if column not in cohort.column_names:
            cohort = cohort.add_column(column, [""] * len(cohort), feature=datasets.Value("string"))
    check_cohort_features(cohort.features)
    return cohort


def load_brainmarks_cohort(path: str | os.PathLike) -> datasets.Dataset | datasets.DatasetDict:
    """Load a Brainmarks cohort folder (written by `save_to_disk`) in the cohort schema, memory-mapped."""
    return from_brainmarks(datasets.load_from_disk(os.fspath(path)))


__all__ = ["from_brainmarks", "load_brainmarks_cohort"]
