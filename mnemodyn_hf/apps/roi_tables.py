"""fMRI files -> ROI time-series tables (TSV with the ROI names as header + a BIDS-style JSON sidecar)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..atomic_files import write_file_atomically
from ..data.manifest import derivatives_manifest, is_derivatives_folder
from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from ..preprocessing.denoising import FrameSelection
from ..preprocessing.fmri_inputs import read_recording


def input_files(files: Sequence[str | os.PathLike], space: str | None = None) -> list[str]:
    """The files to read: each file as given, each fMRIPrep derivatives folder as its runs in `space` (see
    `mnemodyn_hf.data.manifest.derivatives_manifest`).

    Raises:
        ValueError: a folder that holds no fMRIPrep confounds tables, or `space` without any folder.
    """
    paths = []
    for file in files:
        if not Path(file).is_dir():
            paths.append(str(file))
        elif is_derivatives_folder(file):
            paths += list(derivatives_manifest(file, space=space)["path"])
        else:
            raise ValueError(
                f"{file} is a folder without fMRIPrep confounds tables (sub-*/[ses-*/]func/*_desc-confounds_"
                "timeseries.tsv); give fMRIPrep's output folder, or the image files themselves."
            )
    if space is not None and not any(Path(file).is_dir() for file in files):
        raise ValueError("--space picks runs in fMRIPrep derivatives folders; none of the inputs is a folder.")
    return paths


def source_tr(path: str | os.PathLike, repetition_time: float | None) -> float | None:
    """The TR of a file's frames: `repetition_time` when given, else its header's (None when it states none)."""
    return repetition_time or read_recording(path).repetition_time


def denoising_sidecar(extractor: MnemoDynFeatureExtractor, frames: FrameSelection) -> dict[str, Any]:
    """What a table or an embedding records of one run's denoising: the strategy (None: none) and the frames
    acquired, kept, interpolated and trimmed."""
    return {"Denoising": extractor.denoise, **frames.to_json()}


def write_roi_tables(
    files: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    extractor: MnemoDynFeatureExtractor | None = None,
    repetition_time: float | None = None,
    resample: bool = True,
    confounds: Sequence[Any] | None = None,
) -> list[Path]:
    """Parcel means of each file through `extractor` (default: the shipped 450-ROI atlas at TR 0.735 s), denoised by
    its `denoise` strategy, resampled to its TR unless `resample=False`, never normalised; writes
    `<output_dir>/<name>_rois.tsv` (frames x ROIs) and `<name>_rois.json` (RepetitionTime, sources, atlas,
    denoising, frames kept). Every file is read before any table is written, so a file that fails leaves no table
    behind. `confounds` gives the fMRIPrep confounds of each file explicitly (None: found beside the files).
    Returns the tables."""
    extractor = extractor or MnemoDynFeatureExtractor(do_normalize=False)
    extractor.do_normalize = False  # tables hold parcel means; scaling belongs to the model's statistics
    extractor.do_resample = resample
    confounds = [None] * len(files) if confounds is None else list(confounds)
    runs = []
    for index, path in enumerate(tqdm(files, desc="Parcellating", unit="file")):
        series, frames = extractor.roi_series(path, repetition_time, confounds[index], index)
        runs.append((path, series.astype(np.float32), frames))
    tables = []
    for path, series, frames in runs:
        stem = Path(path).name.split(".")[0]
        rows = ["\t".join(extractor.roi_names)] + ["\t".join(f"{value:.7g}" for value in frame) for frame in series]
        table = write_file_atomically(Path(output_dir) / f"{stem}_rois.tsv", "\n".join(rows) + "\n")
        sidecar = {
            "Sources": [str(path)],
            "RepetitionTime": extractor.target_repetition_time if resample else source_tr(path, repetition_time),
            "NumberOfVolumes": int(series.shape[0]),
            "Atlas": sorted(file.name for file in extractor.atlas.files.values()),
            "Resampled": resample,
            "Normalized": False,
            **denoising_sidecar(extractor, frames),
        }
        write_file_atomically(table.with_suffix(".json"), json.dumps(sidecar, indent=2))
        tables.append(table)
    return tables


__all__ = ["denoising_sidecar", "input_files", "write_roi_tables"]
