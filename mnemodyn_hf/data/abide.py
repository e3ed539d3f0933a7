"""ABIDE I (Preprocessed Connectomes Project, CC200 atlas) from a local folder, in the cohort schema.

The folder (e.g. the shared `abide_dev/`, any subset of ABIDE sites) holds:

    cc200_float16.npz   one array per subject, key = subject_id, shape (T, 200) float16
    phenotypes.csv      one row per subject: subject_id, site, tr, dx, sex, age, n_timepoints, func_mean_fd,
                        func_perc_fd, n_zero_rois_cc200, in_pcp_1035, eye_status, handedness, fiq

The data are never shipped with this package; find the folder with `shared_data_dir(path, "abide_dev")`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from .schema import cohort_features

logger = logging.getLogger(__name__)

ABIDE_ARRAYS = "cc200_float16.npz"
ABIDE_TABLE = "phenotypes.csv"
#: CC200 (Craddock et al. 2012) as parcellated by the PCP: 200 ROIs.
ABIDE_NUM_ROIS = 200
#: ABIDE's code for "not recorded" in its phenotypic tables; read as null.
ABIDE_MISSING_CODE = -9999

#: The label columns, named as in phenotypes.csv, and their types; `zero_rois` is computed from the arrays.
ABIDE_LABELS = {
    "dx": datasets.Value("int64"),  # 1 autism, 0 typical control
    "sex": datasets.Value("string"),  # "M" / "F"
    "age": datasets.Value("float32"),  # years
    "func_mean_fd": datasets.Value("float32"),  # mean framewise displacement (mm)
    "func_perc_fd": datasets.Value("float32"),  # % of frames above the PCP's FD threshold
    "n_zero_rois_cc200": datasets.Value("int64"),
    "in_pcp_1035": datasets.Value("bool"),  # in the PCP's 1035-subject release
    "eye_status": datasets.Value("string"),  # "open" / "closed" during the scan
    "handedness": datasets.Value("string"),  # as recorded: "R", "L", "Mixed", "Ambi", "L->R", ...
    "fiq": datasets.Value("float32"),  # full-scale IQ
    "zero_rois": datasets.List(datasets.Value("int32")),  # indices of all-zero ROI columns (no coverage)
}
_NUMERIC = {
    "dx": int,
    "n_zero_rois_cc200": int,
    "age": float,
    "func_mean_fd": float,
    "func_perc_fd": float,
    "fiq": float,
}
_REQUIRED = ("subject_id", "site", "tr", "n_timepoints", *(label for label in ABIDE_LABELS if label != "zero_rois"))


def load_abide_pcp(
    path: str | os.PathLike,
    *,
    sites: Sequence[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.Dataset:
    """ABIDE I runs (one per subject) from `path`: `bold` (T, 200) float32 CC200, TR per site, phenotypes as labels.

    Rows: `subject` is the subject_id (e.g. "Pitt_0050003"), `site` the ABIDE site (e.g. "PITT"), `session` and
    `run` are "", `tr` the table's per-site TR in seconds, `path` is "<npz file>:<subject_id>". The labels are the
    table's columns under the same names (see `ABIDE_LABELS`; blanks and ABIDE's -9999 become null, no row is
    dropped) plus `zero_rois`, the indices of the run's all-zero ROI columns: the PCP's CC200 masks miss these
    regions, so mask them (they agree with `n_zero_rois_cc200`, checked). One warning summarises them.

    Args:
        path: the cohort folder (holding cc200_float16.npz and phenotypes.csv).
        sites: keep only these sites (names as in the table's `site` column, e.g. ["KKI", "PITT"]); None keeps
            all.
        cache_dir: where `datasets` writes the Arrow cache.

    Raises:
        FileNotFoundError: a file of the layout is missing.
        ValueError: `sites` names a site the table lacks (the message lists them), or the table and the arrays
            disagree (a subject without an array or an array without a row, a run length or zero-ROI count
            different from the table's), naming the subjects.
    """
    folder = Path(path)
    arrays_file = folder / ABIDE_ARRAYS
    table = everyone = _read_table(folder)
    if sites is not None:
        sites = [sites] if isinstance(sites, str) else list(sites)
        available = sorted(table["site"].unique())
        unknown = sorted(set(sites) - set(available))
        if unknown:
            raise ValueError(f"Unknown ABIDE site(s) {unknown} in {folder / ABIDE_TABLE}; available: {available}.")
        table = table[table["site"].isin(set(sites))]
    zero_rois = _check_arrays(arrays_file, everyone, table)
    with_zeros = {subject: rois for subject, rois in zero_rois.items() if rois}
    if with_zeros:
        worst = max(with_zeros, key=lambda subject: len(with_zeros[subject]))
        logger.warning(
            "%d of %d ABIDE runs have all-zero ROI columns (no coverage), at most %d (%s); mask the ROIs listed "
            "in `zero_rois`.",
            len(with_zeros),
            len(table),
            len(with_zeros[worst]),
            worst,
        )
    rows = [_labels(record) | {"zero_rois": zero_rois[record["subject_id"]]} for record in table.to_dict("records")]
    return datasets.Dataset.from_generator(
        _abide_runs,
        features=cohort_features(ABIDE_NUM_ROIS, ABIDE_LABELS),
        gen_kwargs={"arrays_file": str(arrays_file), "rows": rows},
        cache_dir=cache_dir,
    )


def _read_table(folder: Path) -> pd.DataFrame:
    missing = [name for name in (ABIDE_ARRAYS, ABIDE_TABLE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {missing}. An ABIDE PCP folder holds `{ABIDE_ARRAYS}` (one (T, {ABIDE_NUM_ROIS}) "
            f"array per subject_id) and `{ABIDE_TABLE}` (one row per subject: {', '.join(_REQUIRED)}); pass that "
            "folder (e.g. $MNEMODYN_SHARED_DATA/abide_dev)."
        )
    table = pd.read_csv(folder / ABIDE_TABLE, dtype={"subject_id": str, "site": str})
    absent = [column for column in _REQUIRED if column not in table.columns]
    if absent:
        raise ValueError(f"{folder / ABIDE_TABLE} lacks the column(s) {absent}; it has {list(table.columns)}.")
    duplicated = sorted(table.loc[table["subject_id"].duplicated(), "subject_id"])
    if duplicated:
        raise ValueError(f"{folder / ABIDE_TABLE} lists subject(s) {duplicated} more than once; keep one row each.")
    return table


def _check_arrays(arrays_file: Path, everyone: pd.DataFrame, table: pd.DataFrame) -> dict[str, list[int]]:
    """Check the arrays against the whole table and the kept rows; return {subject_id: all-zero ROI columns}."""
    with np.load(arrays_file) as arrays:
        keys = set(arrays.files)
        subjects = list(table["subject_id"])
        without_array = sorted(set(everyone["subject_id"]) - keys)
        if without_array:
            raise ValueError(
                f"{len(without_array)} subject(s) of {arrays_file.with_name(ABIDE_TABLE)} have no array in "
                f"{arrays_file}: {_names(without_array)}. Add their arrays or remove their rows."
            )
        without_row = sorted(keys - set(everyone["subject_id"]))
        if without_row:
            raise ValueError(
                f"{len(without_row)} array(s) of {arrays_file} have no row in {arrays_file.with_name(ABIDE_TABLE)}:"
                f" {_names(without_row)}. Add their phenotypes or remove the arrays."
            )
        zero_rois = {}
        for subject, frames, expected in zip(subjects, table["n_timepoints"], table["n_zero_rois_cc200"]):
            series = arrays[subject]
            if series.ndim != 2 or series.shape[1] != ABIDE_NUM_ROIS:
                raise ValueError(f"{arrays_file}:{subject} has shape {series.shape}, not (T, {ABIDE_NUM_ROIS}).")
            if not pd.isna(frames) and series.shape[0] != int(frames):
                raise ValueError(f"{arrays_file}:{subject} has {series.shape[0]} frames; the table says {frames}.")
            zero_rois[subject] = np.flatnonzero(~series.any(axis=0)).tolist()
            if not pd.isna(expected) and len(zero_rois[subject]) != int(expected):
                raise ValueError(
                    f"{arrays_file}:{subject} has {len(zero_rois[subject])} all-zero ROI column(s) "
                    f"{zero_rois[subject]}, but n_zero_rois_cc200 says {int(expected)}: the array and the table "
                    "are out of step."
                )
    return zero_rois


def _names(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _labels(record: dict) -> dict:
    """The run's identifiers and typed labels from one table row (nan and -9999 -> None)."""

    def value(column: str):
        item = record[column]
        if pd.isna(item) or str(item).strip() in ("", str(ABIDE_MISSING_CODE)):
            return None
        if column in _NUMERIC:
            number = _NUMERIC[column](float(item))
            return None if number == ABIDE_MISSING_CODE else number
        if column == "in_pcp_1035":
            return item if isinstance(item, bool) else str(item).strip().lower() in ("true", "1")
        return str(item)

    return {
        "tr": None if pd.isna(record["tr"]) else float(record["tr"]),
        "subject": record["subject_id"],
        "session": "",
        "run": "",
        "site": str(record["site"]),
        **{column: value(column) for column in ABIDE_LABELS if column != "zero_rois"},
    }


def _abide_runs(arrays_file: str, rows: list[dict]):
    with np.load(arrays_file) as arrays:
        for row in rows:
            yield {"bold": arrays[row["subject"]].astype(np.float32), "path": f"{arrays_file}:{row['subject']}", **row}


__all__ = ["ABIDE_ARRAYS", "ABIDE_LABELS", "ABIDE_MISSING_CODE", "ABIDE_NUM_ROIS", "ABIDE_TABLE", "load_abide_pcp"]
