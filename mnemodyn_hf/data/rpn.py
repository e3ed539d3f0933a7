"""The RPN-signature study's resting-state runs (MIST-122, three sites) from a local folder, in the cohort schema.

Spisak et al. 2020, Nature Communications 11:187, "Pain-free resting-state functional brain connectivity predicts
individual pain sensitivity": trained on Bochum, validated on Essen and Szeged. The folder (e.g. the shared
`rpn_signature/`) holds:

    mist122_globsig_float16.npz   one array per run, key = run name, (T, 123) float16: GlobSig + MIST-122
    columns.json                  {"columns": the 123 column names}
    runs.csv                      run, site, subject_number, frames, has_fd
    framewise_displacement.npz    each run's framewise displacement (mm), same keys
    {bochum,essen,szeged}_sample.csv   the study's participant tables (ID = subject_number)

The data are never shipped with this package; find the folder with `shared_data_dir(path, "rpn_signature")`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from .schema import cohort_features

logger = logging.getLogger(__name__)

RPN_ARRAYS = "mist122_globsig_float16.npz"
RPN_COLUMNS = "columns.json"
RPN_RUNS = "runs.csv"
RPN_FD = "framewise_displacement.npz"
RPN_NUM_ROIS = 122
#: Repetition time (s) per site: the data README's "about 2.5 s", NOT yet checked against the study's methods.
RPN_REPETITION_TIME = {"bochum": 2.5, "essen": 2.5, "szeged": 2.5}
#: The site whose thresholds standardise everyone's in the study's composite (its training sample).
RPN_REFERENCE_SITE = "bochum"

RPN_LABELS = {
    "global_signal": datasets.List(datasets.Value("float32")),  # GlobSig, one value per frame of `bold`
    "sex": datasets.Value("string"),  # "M" / "F" (the tables' `Male`)
    "age": datasets.Value("float32"),  # years
    "excluded": datasets.Value("bool"),  # the tables' `Excluded` != 0
    "exclusion_crit": datasets.Value("string"),  # the tables' reason, e.g. "orig_exclude"
    "mean_fd": datasets.Value("float32"),  # mean framewise displacement (mm)
    "cpt": datasets.Value("float32"),  # cold pain threshold (deg C)
    "hpt": datasets.Value("float32"),  # heat pain threshold (deg C)
    "mpt_log_geom": datasets.Value("float32"),  # ln of the geometric mean mechanical pain threshold (mN)
    "pain_sensitivity": datasets.Value("float32"),  # the study's composite (Bochum-standardised)
    "pain_sensitivity_within_site": datasets.Value("float32"),  # the same composite, standardised within site
}
_TABLE_LABELS = [label for label in RPN_LABELS if label not in ("global_signal", "mean_fd")]
_THRESHOLDS = ("cpt", "hpt", "mpt_log_geom")
#: +1: a higher threshold means more pain sensitive (cold); -1: less (heat, pinprick).
_SIGNS = (1.0, -1.0, -1.0)


def load_rpn_signature(path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """RPN-signature runs from `path`: 119 runs (Bochum 41, Essen 49, Szeged 29), `bold` (T, 122) float32 MIST-122.

    Rows: `subject` is site + subject number ("bochum-004"), `site` "bochum" / "essen" / "szeged", `run` the run
    name ("bochum-004_pumi-0"), `session` "", `tr` from `RPN_REPETITION_TIME` (2.5 s everywhere: the data README's
    value, to be checked against the study's methods), `path` "<npz file>:<run>".

    `bold` is columns 1-122 of the arrays, in the order of `columns.json`. That order is connattractor's MIST-122
    order (its `ex_timeseries_task/*_ts_run_*.tsv` header, i.e. MIST122_relabeled.tsv's labels, regions grouped by
    module): the 123 names are identical once pandas' de-duplication suffixes (`L_IPlob.1`, `PRC_d.1`, `SPlob.1`,
    `PCcor.1`: MIST-122 repeats four names) are dropped, so nothing is reordered. Column 0, the global signal
    `GlobSig`, is kept out of `bold` and stored as `global_signal` (T,).

    Labels (null where the tables have no value; runs without a table row keep null labels and are counted in a
    warning; rows marked Excluded are kept with `excluded=True`):
        sex, age, excluded, exclusion_crit: from the site's table (`Male`, `Age`, `Excluded`, `exclusion_crit`).
        mean_fd: the mean of the run's framewise displacement series (null without one). Bochum and Essen have
            T - 1 values; Szeged's FD series cover the 240 acquired frames (239 values) although its runs were
            shortened to 155-239 frames, so there it is the whole acquisition's mean.
        cpt, hpt, mpt_log_geom: the pain thresholds. Bochum's tables give them (`CPT`, `HPT`, `MPT_log_geom`);
            for Essen and Szeged they are computed from the trials as the study's code does
            (spisakt/RPN-signature, scripts/process_tables.py + PAINTeR/qst.py): CPT the mean of trials 2-6
            clipped at 0 deg C, HPT the mean of trials 2-6, MPT the ln of the geometric mean of the pain and
            no-pain values of series 2-5.
        pain_sensitivity: the study's composite (Zunhammer et al. 2016), the mean of the available signed z-scores
            (+z(CPT) - z(HPT) - z(MPT_log_geom)); higher = more pain sensitive. z-scores use Bochum's mean and SD
            for every site, as the study's code does (`composite_pain_sensitivity_PAINTeR`: the validation sites
            are scored on the training sample's scale): Bochum with the sample SD, which reproduces Bochum's
            `mean_QST_pain_sensitivity` to 4e-14 (r = 1.0, 39 of 39 scored subjects, two of them without HPT),
            Essen and Szeged with Bochum's population SD (np.nanstd), which reproduces the study's own Essen /
            Szeged scores (res/*_sample_excl.csv of its repository) to 1e-15 for 7 of 8 subjects checked (Szeged
            ID 3 is off by 0.003: its CPT trials here average 1.66 deg C, the study's table had 1.60).
        pain_sensitivity_within_site: the same formula with each site's own mean and sample SD over its
            non-excluded table rows, removing site offsets (identical to `pain_sensitivity` for Bochum).

    Raises:
        FileNotFoundError: a file of the layout is missing.
        ValueError: the files disagree (a run without an array or an array without a runs.csv row, a frame
            count, a missing FD series, an unknown site, columns.json not GlobSig + 122 names), naming them.
    """
    folder = Path(path)
    missing = [name for name in (RPN_ARRAYS, RPN_COLUMNS, RPN_RUNS, RPN_FD) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {missing}. An RPN-signature folder holds `{RPN_ARRAYS}` (one (T, 123) array per run: "
            f"GlobSig + MIST-122), `{RPN_COLUMNS}`, `{RPN_RUNS}` (run, site, subject_number, frames, has_fd), "
            f"`{RPN_FD}` and one `<site>_sample.csv` per site; pass that folder (e.g. $MNEMODYN_SHARED_DATA/"
            "rpn_signature)."
        )
    columns = json.loads((folder / RPN_COLUMNS).read_text())["columns"]
    if len(columns) != RPN_NUM_ROIS + 1 or columns[0] != "GlobSig":
        raise ValueError(f"{folder / RPN_COLUMNS} must list GlobSig then {RPN_NUM_ROIS} regions; got {columns[:3]}...")
    runs = pd.read_csv(folder / RPN_RUNS, dtype={"run": str, "site": str})
    unknown = sorted(set(runs["site"]) - set(RPN_REPETITION_TIME))
    if unknown:
        raise ValueError(
            f"{folder / RPN_RUNS} names site(s) {unknown}; known: {sorted(RPN_REPETITION_TIME)} "
            "(add their TR to RPN_REPETITION_TIME)."
        )
    labels = subject_labels(folder, sorted(set(runs["site"]) | {RPN_REFERENCE_SITE}))
    rows = _check_runs(folder, runs, labels)
    without_row = [row["run"] for row in rows if (row["site"], row["subject_number"]) not in labels]
    if without_row:
        logger.warning(
            "%d of %d RPN runs have no row in their site's table (labels null): %s",
            len(without_row),
            len(rows),
            ", ".join(without_row),
        )
    return datasets.Dataset.from_generator(
        _rpn_runs,
        features=cohort_features(RPN_NUM_ROIS, RPN_LABELS),
        gen_kwargs={"arrays_file": str(folder / RPN_ARRAYS), "rows": [_drop(row, "subject_number") for row in rows]},
        cache_dir=cache_dir,
    )


def subject_labels(folder: str | os.PathLike, sites: list[str]) -> dict[tuple[str, int], dict]:
    """{(site, ID): labels} from the sites' `<site>_sample.csv` tables (thresholds and both composites)."""
    tables = {}
    for site in sites:
        file = Path(folder) / f"{site}_sample.csv"
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing: every site of {RPN_RUNS} needs its participant table.")
        table = pd.read_csv(file, na_values=["NA", "NaN", " "])
        thresholds = qst_thresholds(table, file)
        table = table.assign(**{name: thresholds[name] for name in _THRESHOLDS})
        tables[site] = table = table[table["ID"].notna()]
        duplicated = sorted(table.loc[table["ID"].duplicated(), "ID"].astype(int))
        if duplicated:
            raise ValueError(f"{file} lists ID(s) {duplicated} more than once; keep one row per participant.")
    reference = tables[RPN_REFERENCE_SITE]
    labels = {}
    for site, table in tables.items():
        included = table[table["Excluded"].fillna(0) == 0]
        study = composite_pain_sensitivity(table, reference, ddof=1 if site == RPN_REFERENCE_SITE else 0)
        within = composite_pain_sensitivity(table, included, ddof=1)
        for (_, row), score, score_within in zip(table.iterrows(), study, within):
            labels[site, int(row["ID"])] = {
                "sex": None if pd.isna(row["Male"]) else ("M" if row["Male"] == 1 else "F"),
                "age": _number(row["Age"]),
                "excluded": None if pd.isna(row["Excluded"]) else bool(row["Excluded"] != 0),
                "exclusion_crit": None if pd.isna(reason := row.get("exclusion_crit")) else str(reason).strip() or None,
                **{name: _number(row[name]) for name in _THRESHOLDS},
                "pain_sensitivity": _number(score),
                "pain_sensitivity_within_site": _number(score_within),
            }
    return labels


def qst_thresholds(table: pd.DataFrame, file: str | os.PathLike = "the table") -> pd.DataFrame:
    """CPT, HPT (deg C) and ln geometric-mean MPT per row: the table's own, or from its trials (study's recipe)."""
    if {"CPT", "HPT", "MPT_log_geom"} <= set(table.columns):
        given = table[["CPT", "HPT", "MPT_log_geom"]].to_numpy(dtype=float)
        return pd.DataFrame(given, columns=list(_THRESHOLDS), index=table.index)
    cold, heat = [f"qst_cpt_{trial}" for trial in range(2, 7)], [f"qst_hpt_{trial}" for trial in range(2, 7)]
    pinprick = [f"qst_mpt_{series}_{kind}" for series in range(2, 6) for kind in ("pain", "no_pain")]
    absent = [column for column in (*cold, *heat, *pinprick) if column not in table.columns]
    if absent:
        raise ValueError(f"{file} has neither CPT/HPT/MPT_log_geom nor the QST trials {absent} to compute them.")
    return pd.DataFrame(
        {
            "cpt": table[cold].to_numpy(dtype=float).clip(min=0).mean(axis=1),
            "hpt": table[heat].to_numpy(dtype=float).mean(axis=1),
            "mpt_log_geom": np.log(table[pinprick].to_numpy(dtype=float)).mean(axis=1),
        },
        index=table.index,
    )


def composite_pain_sensitivity(thresholds: pd.DataFrame, reference: pd.DataFrame, *, ddof: int = 1) -> np.ndarray:
    """The composite pain sensitivity of each row of `thresholds`, shape (N,); higher = more sensitive.

    The mean of the available signed z-scores +z(cpt), -z(hpt), -z(mpt_log_geom) (NaN when none is), each
    z-scored with the mean and SD (`ddof`) of `reference`'s column of the same name (NaNs skipped).
    """
    scores = np.stack(
        [
            sign * (thresholds[name] - reference[name].mean()) / reference[name].std(ddof=ddof)
            for name, sign in zip(_THRESHOLDS, _SIGNS)
        ],
        axis=1,
    )
    counts = np.isfinite(scores).sum(axis=1)
    return np.where(counts > 0, np.nansum(scores, axis=1) / np.maximum(counts, 1), np.nan)


def _check_runs(folder: Path, runs: pd.DataFrame, labels: dict) -> list[dict]:
    """One row of identifiers and labels per run, after checking runs.csv against the arrays and FD series."""
    with np.load(folder / RPN_ARRAYS) as arrays, np.load(folder / RPN_FD) as displacement:
        keys, listed = set(arrays.files), set(runs["run"])
        for missing, where, other in ((listed - keys, RPN_ARRAYS, RPN_RUNS), (keys - listed, RPN_RUNS, RPN_ARRAYS)):
            if missing:
                raise ValueError(
                    f"{len(missing)} run(s) of {folder / other} are not in {folder / where}: "
                    f"{sorted(missing)}. Add them there or remove them from {other}."
                )
        rows = []
        for record in runs.to_dict("records"):
            run, site, number = record["run"], record["site"], int(record["subject_number"])
            shape = arrays[run].shape
            if shape[1:] != (RPN_NUM_ROIS + 1,) or shape[0] != int(record["frames"]):
                raise ValueError(
                    f"{folder / RPN_ARRAYS}:{run} has shape {shape}; {RPN_RUNS} says "
                    f"({record['frames']}, {RPN_NUM_ROIS + 1})."
                )
            has_fd = str(record["has_fd"]).strip().lower() in ("true", "1")
            if has_fd and run not in displacement.files:
                raise ValueError(f"{RPN_RUNS} says {run} has FD, but {folder / RPN_FD} lacks it.")
            fd = displacement[run] if has_fd else None
            rows.append(
                {
                    "tr": RPN_REPETITION_TIME[site],
                    "subject": f"{site}-{number:03d}",
                    "session": "",
                    "run": run,
                    "site": site,
                    "subject_number": number,
                    "mean_fd": float(np.mean(fd)) if fd is not None and len(fd) else None,
                    **labels.get((site, number), dict.fromkeys(_TABLE_LABELS)),
                }
            )
    return rows


def _drop(row: dict, key: str) -> dict:
    return {name: value for name, value in row.items() if name != key}


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _rpn_runs(arrays_file: str, rows: list[dict]):
    with np.load(arrays_file) as arrays:
        for row in rows:
            series = arrays[row["run"]].astype(np.float32)
            yield {"bold": series[:, 1:], "global_signal": series[:, 0], "path": f"{arrays_file}:{row['run']}", **row}


__all__ = [
    "RPN_ARRAYS",
    "RPN_LABELS",
    "RPN_NUM_ROIS",
    "RPN_REFERENCE_SITE",
    "RPN_REPETITION_TIME",
    "composite_pain_sensitivity",
    "load_rpn_signature",
    "qst_thresholds",
    "subject_labels",
]
