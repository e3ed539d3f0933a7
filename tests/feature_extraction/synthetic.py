"""Synthetic inputs for the feature-extraction tests."""

from __future__ import annotations

import nibabel as nib
import numpy as np

#: A 4 mm MNI grid (another grid than the atlas's 2 mm one) covering the FSL MNI152 field of view.
GRID_4MM_SHAPE = (46, 55, 46)
GRID_4MM_AFFINE = np.array([[-4.0, 0, 0, 90], [0, 4, 0, -126], [0, 0, 4, -72], [0, 0, 0, 1]])


def random_volume(
    num_frames: int, repetition_time: float = 2.0, time_unit: str = "sec", seed: int = 0
) -> nib.Nifti1Image:
    """A random 4-D NIfTI on the 4 mm grid, with pixdim[4] = repetition_time expressed in `time_unit`."""
    scale = {"sec": 1.0, "msec": 1e3, "usec": 1e6}.get(time_unit, 1.0)
    data = np.random.default_rng(seed).standard_normal(GRID_4MM_SHAPE + (num_frames,)).astype(np.float32)
    image = nib.Nifti1Image(data, GRID_4MM_AFFINE)
    image.header.set_xyzt_units("mm", time_unit)
    image.header["pixdim"][4] = repetition_time * scale
    return image


def write_ptseries(path, values: np.ndarray, names: list[str], repetition_time: float = 0.735) -> None:
    """Write (T, C) values as a CIFTI-2 ptseries whose C parcels (one cortical vertex each) carry `names`."""
    parcels = nib.cifti2.ParcelsAxis(
        name=names,
        voxels=[np.zeros((0, 3), int)] * len(names),
        vertices=[{"CIFTI_STRUCTURE_CORTEX_LEFT": np.array([i])} for i in range(len(names))],
        nvertices={"CIFTI_STRUCTURE_CORTEX_LEFT": 32492},
    )
    series = nib.cifti2.SeriesAxis(start=0.0, step=repetition_time, size=len(values), unit="SECOND")
    image = nib.Cifti2Image(values.astype(np.float32), header=(series, parcels))
    image.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_PARCELLATED_SERIES")
    image.to_filename(path)
