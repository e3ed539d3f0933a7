"""`load_cohort`: a folder or table of fMRI runs as a `datasets.Dataset` in the cohort schema (see `schema.py`).

Files are read inside `Dataset.map` (optionally with `num_proc` processes) into an Arrow cache file under
`cache_dir`, keyed on the manifest, the size and modification time of every file, `repetition_time` and the
feature extractor. A second call with the same inputs reads nothing and memory-maps the cached file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
from datasets.fingerprint import Hasher

from .manifest import RESERVED_COLUMNS, bids_manifest, derivatives_manifest, is_derivatives_folder, table_manifest
from .readers import extract_run, is_roi_table, read_roi_table, sidecar_repetition_time
from .schema import ID_COLUMNS, cohort_features
from .splits import check_subject_disjoint, subject_split

logger = logging.getLogger(__name__)

#: Rows written to Arrow at once are capped so that a write buffer holds at most about this many bytes of BOLD.
WRITER_BUFFER_BYTES = 64 * 2**20


class CohortFileError(ValueError):
    """A run that could not be read; the message starts with the file's path."""


def load_cohort(
    source: str | os.PathLike | pd.DataFrame,
    *,
    file_column: str = "path",
    label_columns: Sequence[str] | None = None,
    pattern: str = "*",
    space: str | None = None,
    repetition_time: float | None = None,
    feature_extractor: Any = None,
    on_error: Literal["raise", "skip"] = "raise",
    num_proc: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    split: Mapping[str, float] | None = None,
    stratify_by: str | None = None,
    seed: int = 0,
) -> datasets.Dataset | datasets.DatasetDict:
    """Load a cohort of fMRI runs into the cohort schema.

    Args:
        source: a BIDS-like folder (`participants.tsv` + `sub-*/[ses-*/]func/*_{bold,timeseries}.*`), an fMRIPrep
            derivatives folder (`sub-*/[ses-*/]func/*_desc-preproc_bold.*` or `*_bold.dtseries.nii` beside
            `*_desc-confounds_timeseries.tsv`; `participants.tsv` optional), or a table (`.csv` / `.tsv` /
            `.parquet` file or DataFrame) with one row per file: `file_column`, `subject`, optional `session`,
            `run`, `site`, `tr` (seconds), `split`, and label columns.
        file_column: the table column holding file paths (tables only).
        label_columns: the table columns to keep as labels; all other columns by default (tables only).
        pattern: glob on file names in `func/` folders, to pick among several files of a run (folders only).
        space: the template space (`space-` entity) of the runs to read from a derivatives folder, e.g.
            `"MNI152NLin6Asym"`; needed when the folder holds several.
        repetition_time: TR (seconds) of files whose TR is given neither by a `tr` column nor by a JSON sidecar.
        feature_extractor: reads files that are not ROI tables (NIfTI, CIFTI); called as
            `feature_extractor(path, return_tensors="np")`, it returns `input_values` (1, T, R) and
            `attention_mask` (1, T). When it resamples (`do_resample` and `target_repetition_time`, as
            `MnemoDynFeatureExtractor` does), its target TR is the cohort's `tr`. Its `denoise` strategy, when it
            has one, denoises fMRIPrep images with the confounds beside them and is kept in the `denoise` column
            (JSON; `""` for runs it did not denoise, such as ROI tables).
        on_error: what to do with a file that cannot be read: `"raise"` a `CohortFileError` naming it, or
            `"skip"` it with a warning that lists every skipped file and why.
        num_proc: processes reading files.
        cache_dir: folder of the Arrow cache (default: `<HF_DATASETS_CACHE>/mnemodyn_cohorts`).
        split: split name -> fraction of subjects (e.g. `{"train": 0.8, "test": 0.2}`), see `subject_split`.
            A `split` column in the table assigns splits instead.
        stratify_by: a subject-level label column to stratify `split` by.
        seed: seed of `split`.

    Returns:
        A `Dataset` with rows (bold (T, R) float32, tr, subject, session, run, site, path, labels...), or a
        `DatasetDict` when `split` or a `split` column is given, checked for subject leakage.

    Example:
        >>> cohort = load_cohort("my_bids/", repetition_time=0.72, split={"train": 0.8, "test": 0.2})
        >>> cohort["train"].with_format("torch")[0]["bold"].shape
        torch.Size([1200, 94])
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    manifest = _manifest(source, file_column=file_column, label_columns=label_columns, pattern=pattern, space=space)
    if split is not None and "split" in manifest.columns:
        raise ValueError("The table has a `split` column and `split` fractions were given; use one of them.")
    if stratify_by is not None and split is None:
        raise ValueError("stratify_by only applies together with `split` fractions.")

    reader = RunReader(feature_extractor, repetition_time, skip_errors=on_error == "skip")
    runs = _read_runs(manifest, reader, num_proc=num_proc, cache_dir=cache_dir)
    runs = _drop_failed_runs(runs)
    if getattr(feature_extractor, "denoise", None) is None:
        runs = runs.remove_columns("denoise")

    if "split" in runs.column_names:
        names = list(dict.fromkeys(runs["split"]))
        splits = datasets.DatasetDict(
            {name: runs.filter(lambda value, name=name: value == name, input_columns="split") for name in names}
        ).remove_columns("split")
        check_subject_disjoint(splits)
        return splits
    if split is not None:
        return subject_split(runs, split, stratify_by=stratify_by, seed=seed)
    return runs


def output_repetition_time(feature_extractor: Any) -> float | None:
    """TR (seconds) of a feature extractor's outputs when it resamples to a fixed TR, else None."""
    if getattr(feature_extractor, "do_resample", False):
        return getattr(feature_extractor, "target_repetition_time", None)
    return None


@dataclass(frozen=True)
class RunReader:
    """Reads one manifest row into `bold` (T, R) float32 and `tr` (seconds); used inside `Dataset.map`.

    With `skip_errors`, a failure is returned in the `error` column ("<reason>") instead of raised.
    """

    feature_extractor: Any = None
    repetition_time: float | None = None
    skip_errors: bool = False
    num_rois: int | None = None

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        try:
            bold, tr = self.read(row["path"], row["tr"])
            return {"bold": bold, "tr": tr, "denoise": self.denoising(row["path"]), "error": None}
        except Exception as error:  # noqa: BLE001 - every failure is reported with its file
            reason = f"{type(error).__name__}: {error}"
            if not self.skip_errors:
                raise CohortFileError(f"{row['path']}: {reason}") from error
            empty = np.zeros((0, self.num_rois or 0), np.float32)
            return {"bold": empty, "tr": None, "denoise": "", "error": reason}

    def denoising(self, path: str) -> str:
        """The denoising record (JSON) the feature extractor applies to the file at `path`, or `""` for none."""
        record = getattr(self.feature_extractor, "denoise", None)
        return "" if record is None or is_roi_table(path) else json.dumps(record, sort_keys=True)

    def read(self, path: str, table_tr: float | None) -> tuple[np.ndarray, float]:
        """(bold (T, R) float32, TR in seconds) of the file at `path`."""
        if is_roi_table(path):
            bold = read_roi_table(path)
            tr = self._source_tr(path, table_tr)
        elif self.feature_extractor is not None:
            bold = extract_run(self.feature_extractor, path)
            tr = output_repetition_time(self.feature_extractor) or self._source_tr(path, table_tr)
        else:
            raise ValueError(
                "not a ROI table (.npy, .tsv, .csv); pass feature_extractor=MnemoDynFeatureExtractor(...) to "
                "parcellate images"
            )
        if self.num_rois is not None and bold.shape[1] != self.num_rois:
            raise ValueError(f"has {bold.shape[1]} ROIs, the cohort has {self.num_rois}")
        if not np.isfinite(bold).all():
            raise ValueError(f"holds {int((~np.isfinite(bold)).sum())} NaN or infinite values")
        return bold, float(tr)

    def _source_tr(self, path: str, table_tr: float | None) -> float:
        if table_tr is not None and not np.isnan(table_tr):
            return table_tr
        tr = sidecar_repetition_time(path)
        if tr is None:
            tr = self.repetition_time
        if tr is None:
            raise ValueError(
                "no repetition time: add a `tr` column to the table, a JSON sidecar with RepetitionTime, or pass "
                "repetition_time="
            )
        return tr


def _manifest(source, *, file_column, label_columns, pattern, space) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame) or Path(source).is_file():
        if pattern != "*" or space is not None:
            raise ValueError("`pattern` and `space` apply to folders; a table lists its files itself.")
        return table_manifest(source, file_column=file_column, label_columns=label_columns)
    if Path(source).is_dir():
        if file_column != "path" or label_columns is not None:
            raise ValueError(
                "`file_column` / `label_columns` apply to tables; a BIDS-like folder labels come from participants.tsv."
            )
        if is_derivatives_folder(source):
            return derivatives_manifest(source, space=space, pattern=pattern)
        if space is not None:
            raise ValueError(f"`space` applies to fMRIPrep derivatives folders; {source} holds no confounds tables.")
        return bids_manifest(source, pattern=pattern)
    raise FileNotFoundError(f"{source} is neither a cohort table nor a BIDS-like folder.")


def _read_runs(
    manifest: pd.DataFrame, reader: RunReader, *, num_proc: int | None, cache_dir: str | os.PathLike | None
) -> datasets.Dataset:
    """Map `reader` over the manifest into (or straight from) the Arrow cache."""
    manifest_features = _manifest_features(manifest)
    table = datasets.Dataset.from_pandas(manifest, features=manifest_features, preserve_index=False)
    cache_dir = Path(cache_dir or Path(datasets.config.HF_DATASETS_CACHE) / "mnemodyn_cohorts")
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _cache_key(manifest, reader)
    num_proc = min(num_proc, len(table)) if num_proc and num_proc > 1 else None
    cache_file = cache_dir / f"cohort-{key}.arrow"
    shard_files = (
        [cache_file]
        if num_proc is None
        else [cache_dir / f"cohort-{key}_{rank:05d}_of_{num_proc:05d}.arrow" for rank in range(num_proc)]
    )

    if all(shard.is_file() for shard in shard_files):
        logger.info("Cohort found in cache: %s", cache_file)
        bold_feature = datasets.Dataset.from_file(str(shard_files[0])).features["bold"]
        num_rois, frames = bold_feature.shape[1], 1
    else:
        num_rois, frames = _probe(manifest, reader)
    labels = {name: value for name, value in manifest_features.items() if name not in ("path", "tr", *ID_COLUMNS)}
    features = cohort_features(num_rois, labels)
    features["denoise"] = datasets.Value("string")
    features["error"] = datasets.Value("string")
    return table.map(
        dataclasses.replace(reader, num_rois=num_rois),
        features=features,
        num_proc=num_proc,
        cache_file_name=str(cache_file),
        new_fingerprint=key,
        writer_batch_size=max(1, min(1000, WRITER_BUFFER_BYTES // (frames * num_rois * 4))),
        desc="Reading runs",
    )


def _probe(manifest: pd.DataFrame, reader: RunReader) -> tuple[int, int]:
    """(R, T) of the first readable file: R fixes the schema, T sizes the write buffers."""
    reasons = []
    for path, tr in zip(manifest["path"], manifest["tr"]):
        try:
            bold, _ = reader.read(path, tr)
            return bold.shape[1], max(bold.shape[0], 1)
        except Exception as error:  # noqa: BLE001 - reported below or by the map
            if not reader.skip_errors:
                raise CohortFileError(f"{path}: {type(error).__name__}: {error}") from error
            reasons.append(f"{path}: {type(error).__name__}: {error}")
    raise ValueError("No file of the cohort could be read:\n  " + "\n  ".join(reasons))


def _drop_failed_runs(runs: datasets.Dataset) -> datasets.Dataset:
    """Warn about every run the map could not read (with its reason) and drop them."""
    failed = runs.filter(lambda error: error is not None, input_columns="error")
    if len(failed):
        details = "\n  ".join(f"{path}: {error}" for path, error in zip(failed["path"], failed["error"]))
        warnings.warn(f"Skipped {len(failed)} of {len(runs)} runs that could not be read:\n  {details}", stacklevel=3)
        runs = runs.filter(lambda error: error is None, input_columns="error")
    return runs.remove_columns("error")


def _manifest_features(manifest: pd.DataFrame) -> datasets.Features:
    """Features of the manifest columns: strings for ids and paths, float `tr`, labels typed from their values."""
    reserved = {column: datasets.Value("string") for column in RESERVED_COLUMNS if column in manifest.columns}
    reserved["tr"] = datasets.Value("float32")
    labels = manifest.drop(columns=list(reserved)).infer_objects()  # typed columns; floats stay floats
    inferred = datasets.Features.from_arrow_schema(pa.Schema.from_pandas(labels, preserve_index=False))
    typed = {
        name: datasets.Value("string") if feature == datasets.Value("large_string") else feature
        for name, feature in inferred.items()
    }
    return datasets.Features({**reserved, **typed})


def _extractor_identity(feature_extractor: Any) -> str:
    """What identifies an extractor's outputs: its saved configuration when it has one (a transformers feature
    extractor; its pickled state also holds lazily built caches that change after the first call), else its
    pickled state."""
    if hasattr(feature_extractor, "to_json_string"):
        return Hasher.hash([type(feature_extractor).__qualname__, feature_extractor.to_json_string()])
    return Hasher.hash(feature_extractor)


def _cache_key(manifest: pd.DataFrame, reader: RunReader) -> str:
    files = []
    for path in manifest["path"]:
        stat = Path(path).stat() if Path(path).exists() else None
        files.append((stat.st_size, stat.st_mtime_ns) if stat else None)
    try:
        extractor = _extractor_identity(reader.feature_extractor)
    except Exception as error:  # noqa: BLE001
        raise TypeError(f"feature_extractor must be picklable to be cached and sent to workers: {error}") from error
    records = manifest.astype(object).where(manifest.notna(), None).to_dict("records")
    return Hasher.hash(["mnemodyn-cohort-v1", records, files, reader.repetition_time, extractor])


__all__ = ["CohortFileError", "RunReader", "load_cohort"]
