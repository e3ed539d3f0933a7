"""Manifests: the table of runs a cohort is built from, one row per file, before any file is read.

A manifest is a `pandas.DataFrame` with the columns `path` (absolute), `subject`, `session`, `run`, `site`
(strings, "" when absent), `tr` (seconds, NaN when the source does not state it), optionally `split`, and
label columns. It comes from a BIDS-like folder ([`bids_manifest`]), an fMRIPrep derivatives folder
([`derivatives_manifest`]) or a table with one row per file ([`table_manifest`]).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import ID_COLUMNS

#: Files a BIDS-like folder may hold runs in: ROI tables (read natively) and images (need a feature extractor).
RUN_EXTENSIONS = (".npy", ".tsv", ".csv", ".nii", ".nii.gz", ".dtseries.nii", ".ptseries.nii")
#: BIDS suffixes (last `_` field of the name) that mark a run of BOLD: raw/preprocessed images and ROI tables.
RUN_SUFFIXES = ("bold", "timeseries")
#: The preprocessed BOLD of an fMRIPrep derivatives folder: volumes (`desc-preproc`) and CIFTI dense series.
DERIVATIVE_RUNS = ("*_desc-preproc_bold.nii.gz", "*_bold.dtseries.nii")
#: fMRIPrep's confounds tables (`timeseries` since 20.2, `regressors` before), which mark a derivatives folder.
CONFOUNDS_FILES = ("*_desc-confounds_timeseries.tsv", "*_desc-confounds_regressors.tsv")
#: Columns a manifest reserves; everything else in a source table is a label.
RESERVED_COLUMNS = ("path", *ID_COLUMNS, "tr", "split")

_ENTITY = re.compile(r"([a-zA-Z0-9]+)-([a-zA-Z0-9]+)")


def bids_manifest(root: str | os.PathLike, pattern: str = "*") -> pd.DataFrame:
    """Manifest of a BIDS-like folder: `participants.tsv` plus `sub-*/[ses-*/]func/*_{bold,timeseries}.*`.

    `subject` and `session` are the `sub` / `ses` labels without their prefix; `run` is the `run` label and
    `task` the `task` label ("" when absent); `site` is the `site` column of `participants.tsv` when it has
    one. The other columns of `participants.tsv` become labels. `pattern` (a glob on file names, e.g.
    `"*task-rest*_timeseries.tsv"`) picks among several files of one run.
    """
    root = Path(root)
    if not (root / "participants.tsv").is_file():
        raise FileNotFoundError(f"{root} is not a BIDS-like folder: it has no participants.tsv.")
    paths = [
        path
        for path in sorted(root.glob(f"sub-*/**/func/{pattern}"))
        if path.is_file()
        and path.name.lower().endswith(RUN_EXTENSIONS)
        and path.name[: -len(_extension(path.name))].rsplit("_", 1)[-1] in RUN_SUFFIXES
    ]
    if not paths:
        raise FileNotFoundError(
            f"No runs under {root}/sub-*/[ses-*/]func/ match {pattern!r} with a suffix in {RUN_SUFFIXES} and an "
            f"extension in {RUN_EXTENSIONS}."
        )
    return _with_participants(_runs(paths, "pass a `pattern` that picks one of them"), root)


def is_derivatives_folder(root: str | os.PathLike) -> bool:
    """Whether `root` holds fMRIPrep derivatives: confounds tables in `sub-*/[ses-*/]func/` folders."""
    return any(next(Path(root).glob(f"sub-*/**/func/{name}"), None) for name in CONFOUNDS_FILES)


def derivatives_manifest(root: str | os.PathLike, space: str | None = None, pattern: str = "*") -> pd.DataFrame:
    """Manifest of an fMRIPrep derivatives folder: the preprocessed BOLD `sub-*/[ses-*/]func/*_desc-preproc_bold.nii.gz`
    and `*_bold.dtseries.nii` (`DERIVATIVE_RUNS`) in one template space; their confounds stay beside them.

    `space` is the `space-` entity to read (e.g. `"MNI152NLin6Asym"`, the shipped atlas's volume template, or
    `"fsLR"` for CIFTI); it may be left out when the folder holds one space. `participants.tsv` is optional
    (fMRIPrep does not write one): its columns become labels when present. Other columns as `bids_manifest`.
    """
    root = Path(root)
    found = {path for name in DERIVATIVE_RUNS for path in root.glob(f"sub-*/**/func/{name}") if path.match(pattern)}
    if not found:
        raise FileNotFoundError(
            f"No preprocessed BOLD under {root}/sub-*/[ses-*/]func/ matches {list(DERIVATIVE_RUNS)} and {pattern!r}."
        )
    spaces = {path: dict(_ENTITY.findall(path.name)).get("space", "") for path in found}
    available = sorted(set(spaces.values()))
    if space is None and len(available) > 1:
        raise ValueError(
            f"{root} holds runs in the template spaces {available}; pass space=... (--space) to choose one: the "
            "shipped atlas is in MNI152NLin6Asym (volumes) and fsLR (CIFTI)."
        )
    paths = sorted(path for path in found if space is None or spaces[path] == space)
    if not paths:
        raise FileNotFoundError(f"{root} has no run in space {space!r}; its runs are in {available}.")
    return _with_participants(_runs(paths, "pass a `pattern` that picks one of them"), root, required=False)


def _runs(paths: Sequence[Path], fix: str) -> pd.DataFrame:
    """One row per run file: path and the sub/ses/run/task entities of its name; a run found twice is an error."""
    rows = []
    for path in paths:
        entities = dict(_ENTITY.findall(path.name[: -len(_extension(path.name))]))
        names = {"subject": "sub", "session": "ses", "run": "run", "task": "task"}
        rows.append({"path": str(path.resolve()), **{column: entities.get(key, "") for column, key in names.items()}})
    runs = pd.DataFrame(rows)
    duplicated = runs[runs.duplicated(["subject", "session", "task", "run"], keep=False)]
    if len(duplicated):
        raise ValueError(f"Several files describe the same run; {fix}:\n  " + "\n  ".join(sorted(duplicated["path"])))
    return runs


def _with_participants(runs: pd.DataFrame, root: Path, required: bool = True) -> pd.DataFrame:
    """The runs with the labels of `root/participants.tsv` (the `site` column as the site), as a manifest."""
    participants_file = root / "participants.tsv"
    if participants_file.is_file() or required:
        participants = pd.read_csv(participants_file, sep="\t", dtype={"participant_id": str}, na_values=["n/a"])
        if "participant_id" not in participants.columns:
            columns = list(participants.columns)
            raise ValueError(f"{participants_file} has no `participant_id` column; it has {columns}.")
        participants["subject"] = participants.pop("participant_id").str.removeprefix("sub-")
        if "site" in participants.columns:
            participants["site"] = participants["site"].astype("string").fillna("")
        unknown = sorted(set(runs["subject"]) - set(participants["subject"]))
        if unknown:
            raise ValueError(f"Subjects {unknown} have runs but no row in {participants_file}.")
        runs = runs.merge(participants, on="subject", how="left", validate="many_to_one")
    if "site" not in runs.columns:
        runs["site"] = ""
    runs["tr"] = np.nan
    return _ordered(runs)


def table_manifest(
    table: str | os.PathLike | pd.DataFrame,
    file_column: str = "path",
    label_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Manifest of a table (CSV, TSV, Parquet or a DataFrame) with one row per file.

    The table needs `file_column` and `subject`; `session`, `run`, `site`, `tr` (seconds) and `split` are used
    when present. Relative paths are resolved against the table's folder (the working directory for a
    DataFrame). Labels are `label_columns`, by default every other column.
    """
    if isinstance(table, pd.DataFrame):
        frame, base = table.copy(), Path.cwd()
    else:
        frame, base = _read_table(Path(table), file_column), Path(table).resolve().parent
    if file_column not in frame.columns:
        raise ValueError(f"The table has no file column {file_column!r}; it has {list(frame.columns)}.")
    if "subject" not in frame.columns:
        hint = " (rename `sub` to `subject`)" if "sub" in frame.columns else ""
        raise ValueError(f"The table has no `subject` column{hint}; it has {list(frame.columns)}.")
    if file_column != "path":
        if "path" in frame.columns:
            raise ValueError(f"The table has both `path` and the file column {file_column!r}; drop one.")
        frame = frame.rename(columns={file_column: "path"})
    if frame["subject"].isna().any():
        raise ValueError(f"Rows {list(np.flatnonzero(frame['subject'].isna()))} of the table have no subject.")
    frame["path"] = [str(path if Path(path).is_absolute() else (base / path).resolve()) for path in frame["path"]]
    for column in ID_COLUMNS:
        frame[column] = frame[column].astype("string").fillna("") if column in frame.columns else ""
    frame["tr"] = frame["tr"].astype(float) if "tr" in frame.columns else np.nan
    if label_columns is not None:
        missing = sorted(set(label_columns) - set(frame.columns))
        if missing:
            raise ValueError(f"Label columns {missing} are not in the table; it has {list(frame.columns)}.")
        keep = [column for column in frame.columns if column in RESERVED_COLUMNS or column in label_columns]
        frame = frame[keep]
    return _ordered(frame)


def _read_table(path: Path, file_column: str) -> pd.DataFrame:
    as_text = {column: str for column in (file_column, *ID_COLUMNS)}
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=as_text, na_values=["n/a"])
    raise ValueError(f"{path.name}: a cohort table must be .csv, .tsv or .parquet.")


def _extension(name: str) -> str:
    lowered = name.lower()
    return max((ext for ext in RUN_EXTENSIONS if lowered.endswith(ext)), key=len)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    first = [column for column in RESERVED_COLUMNS if column in frame.columns]
    return frame[first + [column for column in frame.columns if column not in first]].reset_index(drop=True)


__all__ = [
    "CONFOUNDS_FILES",
    "DERIVATIVE_RUNS",
    "RESERVED_COLUMNS",
    "RUN_EXTENSIONS",
    "RUN_SUFFIXES",
    "bids_manifest",
    "derivatives_manifest",
    "is_derivatives_folder",
    "table_manifest",
]
