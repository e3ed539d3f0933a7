"""Reading one feature-extractor input (array, table, NIfTI or CIFTI) with its repetition time.

Every check happens here, at the boundary, and every error names the input, what was expected and what was found.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nibabel as nib
import numpy as np

IMAGE_SUFFIXES = (".nii", ".nii.gz")
TABLE_SUFFIXES = (".npy", ".tsv", ".csv")
EXPECTED_INPUTS = (
    "a (T, R) array or ROI table (.npy/.tsv/.csv), a 4-D NIfTI (x, y, z, time), a CIFTI dense series "
    "(.dtseries.nii) or a parcellated CIFTI series (.ptseries.nii or reference-style parcellated .dtseries.nii)"
)

#: Seconds per NIfTI time unit (`xyzt_units`); other units (unknown, hz, ppm, rads) give no repetition time.
NIFTI_TIME_UNITS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}

#: Cells of a text table that mean "missing" (BIDS writes n/a).
MISSING_CELLS = {"", "n/a", "na", "nan"}


@dataclass
class Recording:
    """One input as read, before parcellation.

    Attributes:
        source: how messages name the input (its path, or its position and type).
        kind: "volume" (a 4-D NIfTI image), "cifti" (a dense CIFTI series) or "table" ((T, C) ROI values).
        image: the nibabel image of a "volume" or "cifti" recording.
        brain_models: the grayordinates of a "cifti" recording (its BrainModelAxis).
        values: (T, C) ROI values of a "table" recording.
        column_names: the C column names of a table, when it has them.
        repetition_time: seconds between frames, from the file header; `None` when the header has none.
        repetition_time_note: why the header gives no repetition time (for the error message).
    """

    source: str
    kind: Literal["volume", "cifti", "table"]
    image: nib.Nifti1Image | nib.Nifti2Image | nib.Cifti2Image | None = None
    brain_models: nib.cifti2.BrainModelAxis | None = None
    values: np.ndarray | None = None
    column_names: list[str] | None = None
    repetition_time: float | None = None
    repetition_time_note: str = "it has no repetition time"


def describe_source(item: Any, index: int) -> str:
    """How messages name an input: its file name, or its position and type."""
    if isinstance(item, (str, os.PathLike)):
        return repr(os.fspath(item))
    filename = item.get_filename() if isinstance(item, nib.filebasedimages.FileBasedImage) else None
    if filename:
        return repr(filename)
    shape = getattr(item, "shape", None)
    return f"input #{index} ({type(item).__name__}{f' of shape {tuple(shape)}' if shape is not None else ''})"


def source_path(item: Any) -> str | None:
    """The file an input was read from: a path, or a nibabel image's file name; None for anything else."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return item.get_filename() if isinstance(item, nib.filebasedimages.FileBasedImage) else None


def read_recording(item: Any, index: int = 0) -> Recording:
    """Read one input: a path, a nibabel NIfTI/CIFTI image, a (T, C) array or tensor, or a DataFrame."""
    source = describe_source(item, index)
    if isinstance(item, (str, os.PathLike)):
        return _read_file(Path(item), source)
    if isinstance(item, nib.Cifti2Image):
        return _cifti_recording(item, source)
    if isinstance(item, (nib.Nifti1Image, nib.Nifti2Image)):
        return _nifti_recording(item, source)
    if hasattr(item, "columns") and hasattr(item, "to_numpy"):  # a pandas DataFrame
        names = [str(name) for name in item.columns]
        numbered = all(isinstance(name, (int, np.integer)) for name in item.columns)
        return _table_recording(item.to_numpy(dtype=np.float64), None if numbered else names, source)
    if isinstance(item, np.ndarray) or hasattr(item, "detach"):  # numpy array or torch tensor
        values = item.detach().cpu().numpy() if hasattr(item, "detach") else item
        return _table_recording(values, None, source)
    raise TypeError(f"{source} is not a supported input; expected {EXPECTED_INPUTS}, or a list of them.")


@contextlib.contextmanager
def reading(source: str) -> Iterator[None]:
    """Turn the I/O errors of a lazily read file (truncated or corrupt data) into a ValueError naming it."""
    try:
        yield
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(f"{source} could not be read (truncated or corrupt file?): {error}") from error


def match_roi_columns(
    values: np.ndarray, names: Sequence[str] | None, roi_names: Sequence[str], source: str
) -> np.ndarray:
    """(T, C) table -> (T, R) columns in the atlas's ROI order.

    Named columns are matched by name (any order), or, for the reference's parcellated files, by their
    `Parcel_<i>` number (i = 1..R in ascending label-key order). Unnamed columns must already be the R ROIs.
    """
    num_rois = len(roi_names)
    if names is None:
        if values.shape[1] != num_rois:
            hint = "; it looks transposed: pass (time, ROIs)" if values.shape[0] == num_rois else ""
            raise ValueError(
                f"{source} has shape {values.shape}; expected (T, {num_rois}): one column per atlas ROI{hint}."
            )
        return values
    position = {name: column for column, name in enumerate(names)}
    if len(position) != len(names):
        duplicates = sorted({name for name in names if list(names).count(name) > 1})[:5]
        raise ValueError(f"{source} has duplicate ROI column names {duplicates}; expected unique names.")
    if set(names) == set(roi_names):
        return values[:, [position[name] for name in roi_names]]
    numbers = [re.fullmatch(r"Parcel_(\d+)", name) for name in names]
    if all(numbers) and sorted(int(match[1]) for match in numbers) == list(range(1, num_rois + 1)):
        return values[:, np.argsort([int(match[1]) for match in numbers])]
    known = set(roi_names)
    unknown = [name for name in names if name not in known]
    missing = [name for name in roi_names if name not in position]
    raise ValueError(
        f"{source} has {len(names)} ROI columns, {len(unknown)} of them unknown to the atlas (e.g. {unknown[:5]}), "
        f"and lacks {len(missing)} of the atlas's {num_rois} ROIs (e.g. {missing[:3]}); expected the atlas's ROI "
        f"names in any order (e.g. {list(roi_names[:2])}) or the reference's 'Parcel_1'..'Parcel_{num_rois}'."
    )


def _read_file(path: Path, source: str) -> Recording:
    name = path.name.lower()
    if not name.endswith(IMAGE_SUFFIXES + TABLE_SUFFIXES):
        raise ValueError(f"{source} has an unsupported file type; expected {EXPECTED_INPUTS}.")
    if not path.is_file():
        raise FileNotFoundError(f"{source} does not exist; expected {EXPECTED_INPUTS}.")
    if path.stat().st_size == 0:
        raise ValueError(f"{source} is empty (0 bytes); expected {EXPECTED_INPUTS}.")
    if name.endswith(IMAGE_SUFFIXES):
        try:
            image = nib.load(path)
        except Exception as error:  # nibabel raises many types for unreadable files
            raise ValueError(f"{source} could not be read as NIfTI or CIFTI-2 (corrupt file?): {error}") from error
        if isinstance(image, nib.Cifti2Image):
            return _cifti_recording(image, source)
        if isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
            return _nifti_recording(image, source)
        raise ValueError(f"{source} is a {type(image).__name__}; expected {EXPECTED_INPUTS}.")
    if name.endswith(".npy"):
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as error:
            raise ValueError(f"{source} could not be read as a .npy array (corrupt file?): {error}") from error
        return _table_recording(values, None, source)
    values, names = _read_text_table(path, source, delimiter="\t" if name.endswith(".tsv") else ",")
    return _table_recording(values, names, source)


def _read_text_table(path: Path, source: str, delimiter: str) -> tuple[np.ndarray, list[str] | None]:
    """(T, C) float64 values and the header's C names (None without a header) of a .tsv/.csv ROI table."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle, delimiter=delimiter) if row]
    names = None
    if rows and not all(_is_number(cell) for cell in rows[0]):
        names, rows = [cell.strip() for cell in rows[0]], rows[1:]
    if not rows:
        raise ValueError(f"{source} has no data rows; expected a (T, R) table with one row per frame.")
    widths = {len(row) for row in rows} | ({len(names)} if names else set())
    if len(widths) != 1:
        raise ValueError(f"{source} has rows of different lengths {sorted(widths)}; expected a rectangular table.")
    try:
        values = np.array([[_cell_value(cell) for cell in row] for row in rows], dtype=np.float64)
    except ValueError as error:
        raise ValueError(f"{source} holds a non-numeric cell ({error}); expected numbers (or n/a).") from error
    return values, names


def _is_number(cell: str) -> bool:
    try:
        _cell_value(cell)
    except ValueError:
        return False
    return True


def _cell_value(cell: str) -> float:
    cell = cell.strip()
    return np.nan if cell.lower() in MISSING_CELLS else float(cell)


def _table_recording(
    values: Any, names: list[str] | None, source: str, repetition_time: float | None = None, note: str | None = None
) -> Recording:
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{source} has shape {values.shape}; expected a non-empty (T, R) array of ROI time series.")
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise ValueError(f"{source} holds {values.dtype} values; expected real numbers.")
    return Recording(
        source=source,
        kind="table",
        values=values,
        column_names=names,
        repetition_time=repetition_time,
        repetition_time_note=note or "ROI tables and arrays carry no repetition time",
    )


def _nifti_recording(image: nib.Nifti1Image | nib.Nifti2Image, source: str) -> Recording:
    if image.ndim != 4:
        kind = "a 3-D volume" if image.ndim == 3 else f"{image.ndim}-D"
        raise ValueError(f"{source} is {kind} of shape {image.shape}; expected a 4-D fMRI series (x, y, z, time).")
    if image.shape[3] == 0:
        raise ValueError(f"{source} has no frames (shape {image.shape}); expected a 4-D fMRI series.")
    unit = image.header.get_xyzt_units()[1]
    step = float(image.header["pixdim"][4])
    if unit not in NIFTI_TIME_UNITS:
        note = f"its header's time unit is {unit!r} (pixdim[4] = {step:g}), so pixdim[4] is not a known time"
        return Recording(source, "volume", image=image, repetition_time_note=note)
    if not step > 0:
        return Recording(source, "volume", image=image, repetition_time_note=f"its header has pixdim[4] = {step:g}")
    return Recording(source, "volume", image=image, repetition_time=step * NIFTI_TIME_UNITS[unit])


def _cifti_recording(image: nib.Cifti2Image, source: str) -> Recording:
    axes = [image.header.get_axis(i) for i in range(image.ndim)]
    kinds = tuple(type(axis).__name__ for axis in axes)
    series = [i for i, axis in enumerate(axes) if isinstance(axis, nib.cifti2.SeriesAxis)]
    if len(axes) != 2 or len(series) != 1:
        raise ValueError(f"{source} is a CIFTI-2 file with axes {kinds}; expected a time series: {EXPECTED_INPUTS}.")
    time_axis, other = axes[series[0]], axes[1 - series[0]]
    if time_axis.unit != "SECOND":
        raise ValueError(f"{source} has a CIFTI series axis in {time_axis.unit}; expected a time series in SECOND.")
    if time_axis.size == 0:
        raise ValueError(f"{source} has no frames; expected a CIFTI time series.")
    repetition_time = float(time_axis.step) if time_axis.step > 0 else None
    note = f"its CIFTI series step is {time_axis.step:g}"
    if isinstance(other, nib.cifti2.BrainModelAxis):
        return Recording(
            source, "cifti", image=image, brain_models=other, repetition_time=repetition_time, repetition_time_note=note
        )
    if isinstance(other, (nib.cifti2.ParcelsAxis, nib.cifti2.ScalarAxis)):
        with reading(source):
            values = np.asanyarray(image.dataobj)
        values = values if series[0] == 0 else values.T
        return _table_recording(values, [str(name) for name in other.name], source, repetition_time, note)
    raise ValueError(f"{source} is a CIFTI-2 file with axes {kinds}; expected a time series: {EXPECTED_INPUTS}.")


def as_batch(inputs: Any) -> list[Any]:
    """One input or a batch -> a list of inputs (a (B, T, R) array or tensor is B inputs)."""
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ValueError("Expected at least one input; got an empty list.")
        return list(inputs)
    if getattr(inputs, "ndim", None) == 3 and not hasattr(inputs, "affine"):  # an array/tensor, not an image
        return list(inputs)
    return [inputs]


def per_item(repetition_time: float | Sequence[float | None] | None, num_items: int) -> list[float | None]:
    """One repetition time for all inputs, or one per input -> a list with one entry per input."""
    if repetition_time is None or np.isscalar(repetition_time):
        return [repetition_time] * num_items
    if len(repetition_time) != num_items:
        raise ValueError(f"Got {len(repetition_time)} repetition times for {num_items} inputs; expected one per input.")
    return list(repetition_time)


def source_repetition_time(recording: Recording, given: float | None, target: float) -> float:
    """The TR (seconds) to resample `recording` from: `given` when set (warning if its header disagrees), else the
    header's.

    Raises:
        ValueError: `given` is not positive, or neither `given` nor the header states a TR.
    """
    if given is not None:
        if not given > 0:
            raise ValueError(f"{recording.source}: repetition_time must be positive seconds, got {given}.")
        header_tr = recording.repetition_time
        if header_tr is not None and not np.isclose(header_tr, given, rtol=1e-3):
            warnings.warn(
                f"{recording.source}: repetition_time={given} s was given but its header says {header_tr:g} s; "
                f"using {given} s.",
                stacklevel=4,
            )
        return given
    if recording.repetition_time is None:
        raise ValueError(
            f"{recording.source}: missing repetition time (TR): {recording.repetition_time_note}. Expected the TR in "
            f"seconds to resample to the model's {target} s: pass repetition_time=<seconds>, or do_resample=False to "
            "keep the input's frames."
        )
    return recording.repetition_time
