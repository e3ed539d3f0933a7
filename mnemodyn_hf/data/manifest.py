"""Manifests: the table of runs a cohort is built from, one row per file, before any file is read.

A manifest is a `pandas.DataFrame` with the columns `path` (absolute), `subject`, `session`, `run`, `site`
(strings, "" when absent), `tr` (seconds, NaN when the source does not state it), optionally `split`, and
label columns. It comes either from a BIDS-like folder ([`bids_manifest`]) or from a table with one row per file
([`table_manifest`]).
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
    participants_file = root / "participants.tsv"
    if not participants_file.is_file():
        raise FileNotFoundError(f"{root} is not a BIDS-like folder: it has no participants.tsv.")
    participants = pd.read_csv(participants_file, sep="\t", dtype={"participant_id": str}, na_values=["n/a"])
    if "participant_id" not in participants.columns:
        raise ValueError(f"{participants_file} has no `participant_id` column; it has {list(participants.columns)}.")
    participants["subject"] = participants.pop("participant_id").str.removeprefix("sub-")
    if "site" in participants.columns:
        participants["site"] = participants["site"].astype("string").fillna("")

    rows = []
    for path in sorted(root.glob(f"sub-*/**/func/{pattern}")):
        if not path.is_file() or not path.name.lower().endswith(RUN_EXTENSIONS):
            continue
        stem = path.name[: -len(_extension(path.name))]
        if stem.rsplit("_", 1)[-1] not in RUN_SUFFIXES:
            continue
        entities = dict(_ENTITY.findall(stem))
        rows.append(
            {
                "path": str(path.resolve()),
                "subject": entities.get("sub", ""),
                "session": entities.get("ses", ""),
                "run": entities.get("run", ""),
                "task": entities.get("task", ""),
            }
        )
    if not rows:
        raise FileNotFoundError(
            f"No runs under {root}/sub-*/[ses-*/]func/ match {pattern!r} with a suffix in {RUN_SUFFIXES} and an "
            f"extension in {RUN_EXTENSIONS}."
        )
    runs = pd.DataFrame(rows)
    duplicated = runs[runs.duplicated(["subject", "session", "task", "run"], keep=False)]
    if len(duplicated):
        raise ValueError(
            "Several files describe the same run; pass a `pattern` that picks one of them:\n  "
            + "\n  ".join(sorted(duplicated["path"]))
        )
    unknown = sorted(set(runs["subject"]) - set(participants["subject"]))
    if unknown:
        raise ValueError(f"Subjects {unknown} have runs but no row in {participants_file}.")
    manifest = runs.merge(participants, on="subject", how="left", validate="many_to_one")
    if "site" not in manifest.columns:
        manifest["site"] = ""
    manifest["tr"] = np.nan
    return _ordered(manifest)


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


__all__ = ["RESERVED_COLUMNS", "RUN_EXTENSIONS", "RUN_SUFFIXES", "bids_manifest", "table_manifest"]
