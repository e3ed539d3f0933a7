"""Reading one run of parcellated BOLD from disk into a (T, R) float32 array.

ROI tables are read natively:

* `.npy`: a 2-D array (frames x ROIs);
* `.tsv` / `.csv`: one row per frame, one column per ROI, with or without a header row of ROI names (a header
  is recognised by a first row that is not all numbers).

The repetition time of such a file comes from a BIDS JSON sidecar (`RepetitionTime`, same name with `.json`)
when there is one. Anything else (NIfTI, CIFTI) goes through a feature extractor: any callable with the
signature `feature_extractor(path, return_tensors="np")` returning `input_values` (1, T, R) and
`attention_mask` (1, T), such as `mnemodyn_hf.MnemoDynFeatureExtractor`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..preprocessing.fmri_inputs import read_recording

#: File endings read without a feature extractor.
ROI_TABLE_EXTENSIONS = (".npy", ".tsv", ".csv")


def is_roi_table(path: str | Path) -> bool:
    """Whether `path` is a ROI table this module reads natively."""
    return str(path).lower().endswith(ROI_TABLE_EXTENSIONS)


def read_roi_table(path: str | Path) -> np.ndarray:
    """Read a ROI table (`.npy`, `.tsv`, `.csv`) as a (T, R) float32 array, with the feature extractor's reader
    (`mnemodyn_hf.preprocessing.fmri_inputs`: header row of ROI names optional, `n/a` cells read as NaN).

    Raises:
        ValueError: the file is not a ROI table, is not 2-D, is empty, or holds values that are not numbers.
    """
    if not is_roi_table(path):
        raise ValueError(f"{Path(path).name}: not a ROI table (expected one of {ROI_TABLE_EXTENSIONS}).")
    return np.ascontiguousarray(read_recording(Path(path)).values, dtype=np.float32)


def sidecar_repetition_time(path: str | Path) -> float | None:
    """`RepetitionTime` (seconds) from the BIDS JSON sidecar of `path`, or None when there is no sidecar."""
    path = Path(path)
    stem = path.name.split(".")[0]
    sidecar = path.with_name(f"{stem}.json")
    if not sidecar.is_file():
        return None
    return float(json.loads(sidecar.read_text())["RepetitionTime"])


def extract_run(feature_extractor: Any, path: str | Path) -> np.ndarray:
    """Run `feature_extractor` on one file and return its valid frames as a (T, R) float32 array."""
    outputs = feature_extractor(str(path), return_tensors="np")
    values = np.asarray(outputs["input_values"])
    if values.ndim != 3 or values.shape[0] != 1:
        raise ValueError(
            f"{Path(path).name}: the feature extractor returned input_values of shape {values.shape}, "
            "expected (1, T, R)."
        )
    mask = outputs.get("attention_mask")
    frames = values[0] if mask is None else values[0][np.asarray(mask)[0].astype(bool)]
    return np.ascontiguousarray(frames, dtype=np.float32)


__all__ = ["ROI_TABLE_EXTENSIONS", "extract_run", "is_roi_table", "read_roi_table", "sidecar_repetition_time"]
