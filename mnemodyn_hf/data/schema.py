"""The cohort schema: one row per run of parcellated BOLD.

| column | feature | meaning |
|---|---|---|
| `bold` | `Array2D((None, R), "float32")` | the run, (T frames, R ROIs); only T varies between rows |
| `tr` | `Value("float32")` | repetition time of `bold` in seconds (null when the source does not state it) |
| `subject`, `session`, `run`, `site` | `Value("string")` | identifiers; `""` when the source has no such entity |
| `path` | `Value("string")` | the file the run was read from (provenance, error reports) |
| `denoise` | `Value("string")` | JSON of the denoising applied (`""`: none); only when the extractor denoises |
| label columns | `Value(...)` typed from the source table | subject- or run-level targets |

Brainmarks cohorts (`save_to_disk` folders) use the same `bold` / `tr` features, name the subject column `sub` and
may store `bold` as per-ROI z-scored float16 with `mean` / `std` of shape (1, R); see [`from_brainmarks`].
"""

from __future__ import annotations

from collections.abc import Mapping

import datasets

#: Identifier columns every cohort carries, as strings ("" when the source has no such entity).
ID_COLUMNS = ("subject", "session", "run", "site")

#: dtypes accepted for `bold`: float32 is what this package writes; float16 is what Brainmarks stores.
BOLD_DTYPES = ("float32", "float16")


def cohort_features(num_rois: int, labels: Mapping[str, datasets.Value] | None = None) -> datasets.Features:
    """Features of a cohort with `num_rois` ROIs: `bold`, `tr`, the identifiers, `path`, then the `labels`."""
    features = {
        "bold": datasets.Array2D(shape=(None, num_rois), dtype="float32"),
        "tr": datasets.Value("float32"),
        **{column: datasets.Value("string") for column in ID_COLUMNS},
        "path": datasets.Value("string"),
    }
    clashes = sorted(set(labels or {}) & set(features))
    if clashes:
        raise ValueError(f"Label columns {clashes} clash with the cohort's columns {sorted(features)}; rename them.")
    return datasets.Features({**features, **(labels or {})})


def check_cohort_features(features: datasets.Features) -> int:
    """Raise `ValueError` unless `features` follow the cohort schema; return the ROI count R."""
    missing = [column for column in ("bold", "tr", *ID_COLUMNS) if column not in features]
    if missing:
        hint = " (Brainmarks cohorts name it `sub`: load them with `from_brainmarks`)" if "subject" in missing else ""
        raise ValueError(f"The cohort has no column(s) {missing}{hint}; it has {sorted(features)}.")
    bold = features["bold"]
    if not isinstance(bold, datasets.Array2D) or bold.shape[0] is not None or bold.dtype not in BOLD_DTYPES:
        raise ValueError(
            f"`bold` must be Array2D(shape=(None, R), dtype in {BOLD_DTYPES}) (frames x ROIs), got {bold!r}."
        )
    if features["tr"] != datasets.Value("float32"):
        raise ValueError(f"`tr` must be Value('float32') (seconds), got {features['tr']!r}.")
    for column in ID_COLUMNS:
        if features[column] != datasets.Value("string"):
            raise ValueError(f"`{column}` must be Value('string'), got {features[column]!r}.")
    return bold.shape[1]


__all__ = ["BOLD_DTYPES", "ID_COLUMNS", "check_cohort_features", "cohort_features"]
