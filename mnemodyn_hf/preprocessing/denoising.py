"""Nuisance regression of fMRIPrep derivatives with nilearn's preset strategies, applied to parcel means.

The record of a denoising (the feature extractor's `denoise`, saved in `preprocessor_config.json`) is the keyword
arguments of `nilearn.interfaces.fmriprep.load_confounds_strategy`: `{"denoise_strategy": "simple"}`, plus any of
its parameters (`{"denoise_strategy": "scrubbing", "fd_threshold": 0.3}`). One run is denoised in three steps:

1. **Confounds.** `load_confounds_strategy(image)` finds the run's fMRIPrep confounds file
   (`*_desc-confounds_timeseries.tsv` and its `.json`) beside the image and returns the strategy's regressors and
   its `sample_mask` (the frames that survive: non-steady-state frames and, for `scrubbing`, high-motion frames are
   left out). A confounds table given explicitly (a DataFrame, or the path of an fMRIPrep confounds TSV, whose
   `.json` beside it is used when present) goes through the same function: it is copied into a temporary folder
   under fMRIPrep's file names beside an empty stand-in image name.
2. **Cleaning**, in `NiftiLabelsMasker`'s order and with its settings: the parcel means are cleaned by
   `nilearn.signal.clean(confounds=..., sample_mask=...)` without detrending, filtering or standardization
   (the strategies' `high_pass` is fMRIPrep's cosine regressors, part of the confounds).
3. **Dropped frames** keep their time. The series runs from the first to the last kept frame on the acquisition
   grid: dropped frames before the first and after the last kept frame are trimmed, and dropped frames in between
   are filled by a cubic spline through the cleaned kept frames (as nilearn fills censored frames before
   filtering). Resampling to the model's TR and the model's path derivative then see the real time between kept
   frames, never two frames that were seconds apart glued together. `FrameSelection` records which frames were
   kept, filled and trimmed.

ROI tables and arrays carry no confounds: they are taken as already denoised unless confounds are given for them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: nilearn's preset strategies (`load_confounds_strategy`'s `denoise_strategy`).
DENOISE_STRATEGIES = ("simple", "scrubbing", "compcor", "ica_aroma")
#: The parameters `load_confounds_strategy` accepts beside the strategy name (each strategy takes a subset).
STRATEGY_PARAMETERS = (
    "motion",
    "wm_csf",
    "global_signal",
    "scrub",
    "fd_threshold",
    "std_dvars_threshold",
    "compcor",
    "n_compcor",
    "ica_aroma",
    "demean",
)
INSTALL_HINT = "pip install 'mnemodyn_hf[denoise]'"
#: fMRIPrep's names for the stand-in image and the confounds table of an explicitly given confounds table.
_STAGED_IMAGE = "sub-staged_desc-preproc_bold.nii.gz"
_STAGED_CONFOUNDS = "sub-staged_desc-confounds_timeseries"


def denoise_record(denoise: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check a `denoise` setting and return its record: `{"denoise_strategy": name, **parameters}`, or None.

    Args:
        denoise: None (no denoising), a strategy name of `DENOISE_STRATEGIES`, or a mapping with the key
            `denoise_strategy` and parameters of `load_confounds_strategy` (`STRATEGY_PARAMETERS`).

    Raises:
        ValueError: an unknown strategy or parameter, or a value that is not JSON.
    """
    if denoise is None:
        return None
    record = {"denoise_strategy": denoise} if isinstance(denoise, str) else dict(denoise)
    strategy = record.get("denoise_strategy")
    if strategy not in DENOISE_STRATEGIES:
        raise ValueError(
            f"denoise={denoise!r} names no strategy of nilearn's load_confounds_strategy; expected one of "
            f"{DENOISE_STRATEGIES} (or {{'denoise_strategy': name, **parameters}}), or None for no denoising."
        )
    unknown = sorted(set(record) - {"denoise_strategy", *STRATEGY_PARAMETERS})
    if unknown:
        raise ValueError(
            f"denoise has unknown parameter(s) {unknown}; load_confounds_strategy takes {list(STRATEGY_PARAMETERS)}."
        )
    try:
        return json.loads(json.dumps(record))
    except TypeError as error:
        raise ValueError(f"denoise={denoise!r} must hold JSON values (it is saved in the config): {error}") from error


def describe_record(record: Mapping[str, Any] | None) -> str:
    """`'simple'` or `'scrubbing' (fd_threshold=0.3)`: a record as messages and model cards name it."""
    if record is None:
        return "none"
    parameters = ", ".join(f"{key}={value!r}" for key, value in record.items() if key != "denoise_strategy")
    return repr(record["denoise_strategy"]) + (f" ({parameters})" if parameters else "")


def require_nilearn() -> Any:
    """The `nilearn` module, or an ImportError naming the extra that installs it."""
    try:
        import nilearn.interfaces.fmriprep
        import nilearn.signal
    except ImportError as error:
        raise ImportError(
            f"Denoising fMRIPrep derivatives uses nilearn, which is not installed: {INSTALL_HINT} (or pass "
            "denoise=None for data that are already denoised)."
        ) from error
    return nilearn


@dataclass(frozen=True)
class FrameSelection:
    """The acquired frames of a run and which of them reach the model.

    Attributes:
        num_frames: frames acquired (rows of the confounds table).
        kept: the frames nilearn's `sample_mask` keeps, ascending.
    """

    num_frames: int
    kept: tuple[int, ...]

    @classmethod
    def every_frame(cls, num_frames: int) -> FrameSelection:
        return cls(num_frames, tuple(range(num_frames)))

    @property
    def interpolated(self) -> list[int]:
        """Dropped frames between the first and the last kept frame, filled by interpolation."""
        kept = set(self.kept)
        return [frame for frame in range(self.kept[0], self.kept[-1] + 1) if frame not in kept]

    @property
    def trimmed(self) -> list[int]:
        """Dropped frames before the first or after the last kept frame, left out of the series."""
        return [frame for frame in range(self.num_frames) if not self.kept[0] <= frame <= self.kept[-1]]

    def to_json(self) -> dict[str, Any]:
        """The sidecar entries: frames acquired, kept, interpolated and trimmed (0-based frame indices)."""
        return {
            "NumberOfAcquiredVolumes": self.num_frames,
            "VolumesKept": list(self.kept),
            "VolumesInterpolated": self.interpolated,
            "VolumesTrimmed": self.trimmed,
        }


def per_item_confounds(confounds: Any, items: Sequence[Any]) -> list[Any]:
    """`confounds` for one input, or a list with one per input -> a list with one entry per input."""
    if isinstance(confounds, (list, tuple)):
        if len(confounds) != len(items):
            raise ValueError(f"Got {len(confounds)} confounds for {len(items)} inputs; expected one per input.")
        return list(confounds)
    if confounds is not None and len(items) != 1:
        raise ValueError(f"Got one confounds table for {len(items)} inputs; pass a list with one per input.")
    return [confounds] * len(items)


def denoise_parcel_means(
    record: Mapping[str, Any] | None,
    values: np.ndarray,
    image_path: str | os.PathLike | None,
    confounds: Any,
    source: str,
    repetition_time: float | None = None,
    is_image: bool = False,
) -> tuple[np.ndarray, FrameSelection]:
    """Denoise one run's (T, R) parcel means with the strategy of `record` (the three steps of the module).

    Args:
        record: a `denoise_record`, or None (the values are returned as they are).
        values: (T, R) parcel means (or a ROI table) of the run, one row per acquired frame.
        image_path: the run's fMRIPrep image, whose confounds file lies beside it; None for data without a file.
        confounds: the run's fMRIPrep confounds given explicitly (DataFrame or TSV path), or None to find them
            beside `image_path`; with neither, a ROI table's values are taken as already denoised.
        source: how messages name the run.
        repetition_time: the run's TR in seconds, when known (passed to `signal.clean` as `t_r`).
        is_image: whether the values are parcel means of an image (which cannot be taken as denoised).

    Returns:
        (T', R) float64 series from the first to the last kept frame, and the `FrameSelection`.

    Raises:
        ValueError: confounds that cannot be found or lack what the strategy needs, a row count other than the
            frame count, or a strategy that leaves fewer than two frames.
        ImportError: nilearn is not installed.
    """
    if record is None or (confounds is None and image_path is None and not is_image):
        return values, FrameSelection.every_frame(len(values))
    if confounds is None and image_path is None:
        raise ValueError(
            f"{source} is an image without a file name, so its fMRIPrep confounds cannot be found beside it: pass "
            "confounds=<the run's *_desc-confounds_timeseries.tsv>, the image's path, or denoise=None for data that "
            "are already denoised."
        )
    nilearn = require_nilearn()
    regressors, sample_mask = _strategy_confounds(record, image_path, confounds, source)
    if len(regressors) != len(values):
        raise ValueError(
            f"{source} has {len(values)} frames but its confounds have {len(regressors)} rows; expected one row per "
            "frame: give the confounds file fMRIPrep wrote for this run (its *_desc-confounds_timeseries.tsv)."
        )
    kept = np.arange(len(values)) if sample_mask is None else np.sort(np.asarray(sample_mask, dtype=np.int64))
    if len(kept) < 2:
        raise ValueError(
            f"{source}: denoise strategy {describe_record(record)} drops {len(values) - len(kept)} of its "
            f"{len(values)} frames (non-steady-state and motion outliers), leaving {len(kept)} (a series needs at "
            "least 2). Leave this run out, or loosen the scrubbing (e.g. denoise={'denoise_strategy': 'scrubbing', "
            "'fd_threshold': 0.9, 'std_dvars_threshold': 3}) or use a strategy without scrubbing ('simple')."
        )
    if regressors.shape[1] >= len(kept) - 1:
        warnings.warn(
            f"{source}: denoise strategy {describe_record(record)} regresses {regressors.shape[1]} confounds out of "
            f"{len(kept)} kept frames, which leaves nothing but each ROI's mean. Use longer runs, or fewer "
            "regressors (e.g. {'denoise_strategy': 'simple', 'motion': 'basic'}; --denoise-option motion=basic).",
            stacklevel=4,
        )
    cleaned = nilearn.signal.clean(
        np.asarray(values, dtype=np.float64),
        detrend=False,
        standardize=None,
        standardize_confounds=True,
        t_r=repetition_time,
        low_pass=None,
        high_pass=None,
        confounds=regressors.to_numpy(dtype=np.float64),
        sample_mask=kept,
    )
    frames = FrameSelection(len(values), tuple(int(frame) for frame in kept))
    span = np.arange(kept[0], kept[-1] + 1)
    if len(span) != len(kept):
        from scipy.interpolate import CubicSpline

        cleaned = CubicSpline(kept, cleaned, axis=0)(span)
    return np.asarray(cleaned, dtype=np.float64), frames


def _strategy_confounds(
    record: Mapping[str, Any], image_path: str | os.PathLike | None, confounds: Any, source: str
) -> tuple[Any, np.ndarray | None]:
    """(regressors DataFrame (T, K), sample_mask or None) of a run, from nilearn's `load_confounds_strategy`."""
    if confounds is None:
        return _load_strategy(record, Path(image_path), source, where=f"the confounds beside {source}")
    with tempfile.TemporaryDirectory(prefix="mnemodyn-confounds-") as folder:
        staged = Path(folder) / _STAGED_CONFOUNDS
        if isinstance(confounds, (str, os.PathLike)):
            path = Path(confounds)
            if not path.is_file():
                raise FileNotFoundError(f"{source}: the confounds file {str(path)!r} does not exist.")
            shutil.copyfile(path, staged.with_suffix(".tsv"))
            if path.with_suffix(".json").is_file():
                shutil.copyfile(path.with_suffix(".json"), staged.with_suffix(".json"))
            where = f"the confounds {str(path)!r}"
        elif hasattr(confounds, "to_csv"):
            confounds.to_csv(staged.with_suffix(".tsv"), sep="\t", index=False, na_rep="n/a")
            where = "the confounds DataFrame"
        else:
            raise TypeError(
                f"{source}: confounds must be an fMRIPrep confounds table (a pandas DataFrame or a TSV path), got "
                f"{type(confounds).__name__}."
            )
        (Path(folder) / _STAGED_IMAGE).touch()
        return _load_strategy(record, Path(folder) / _STAGED_IMAGE, source, where)


def _load_strategy(record: Mapping[str, Any], image: Path, source: str, where: str) -> tuple[Any, np.ndarray | None]:
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    name = describe_record(record)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All volumes were marked as motion outliers")
        try:
            return load_confounds_strategy(str(image), **record)
        except ValueError as error:
            message = str(error)
            if "smoothAROMAnonaggr" in message:
                raise ValueError(
                    f"{source}: denoise strategy {name} reads fMRIPrep's ICA-AROMA output "
                    "(*_desc-smoothAROMAnonaggr_bold.nii.gz, fMRIPrep < 23 with --use-aroma), not this image: give "
                    "that file, or choose another strategy ('simple', 'compcor', 'scrubbing')."
                ) from error
            if "Could not find associated confound file" in message or "Invalid file type" in message:
                raise ValueError(
                    f"{source}: denoise strategy {name} needs the run's fMRIPrep confounds, and none were found "
                    f"beside it ({message.strip()}). Expected an fMRIPrep image (*_desc-preproc_bold.nii.gz or "
                    "*_bold.dtseries.nii) with its *_desc-confounds_timeseries.tsv (and .json) in the same folder: "
                    "copy them from the fMRIPrep output, pass confounds=<the run's confounds TSV>, or use "
                    "denoise=None for data that are already denoised."
                ) from error
            raise ValueError(
                f"{source}: {where} do not hold what denoise strategy {name} needs: {message.strip()} Choose a "
                "strategy these confounds support (e.g. 'simple'), or give the full fMRIPrep confounds TSV of the "
                "run with its .json sidecar (compcor reads the component metadata there)."
            ) from error


__all__ = [
    "DENOISE_STRATEGIES",
    "INSTALL_HINT",
    "STRATEGY_PARAMETERS",
    "FrameSelection",
    "denoise_parcel_means",
    "denoise_record",
    "describe_record",
    "per_item_confounds",
    "require_nilearn",
]
