"""Parcel means of dense fMRI data (CIFTI grayordinates or volume voxels): one sparse reduction, NaN-aware."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import scipy.sparse
from nibabel.arrayproxy import ArrayProxy

from .atlas import Atlas

#: Frames reduced per sparse product (and read per block from a NIfTI file): bounds the temporary memory.
FRAMES_PER_BLOCK = 32


class ParcelAverager:
    """Mean over each parcel's columns of (T, N) data, as one sparse (N, R) indicator product per block of frames.

    Non-finite values (NaN, inf) are left out of the mean; a parcel with no finite value in a frame (or with no
    column at all) gets NaN there. Sums are accumulated in float64.

    Args:
        labels: (N,) label key of each column (0 or any key not in `keys` is ignored).
        keys: (R,) label keys, in the order of the output columns.
    """

    def __init__(self, labels: np.ndarray, keys: np.ndarray):
        labels = np.asarray(labels).ravel()
        position = {int(key): column for column, key in enumerate(np.asarray(keys).tolist())}
        lookup = np.full(int(max(labels.max(initial=0), max(position, default=0))) + 1, -1, np.int64)
        lookup[list(position)] = list(position.values())
        parcel = np.where(labels >= 0, lookup[np.clip(labels, 0, None)], -1)
        rows = np.flatnonzero(parcel >= 0)
        self.num_columns = len(labels)
        self.indicator = scipy.sparse.csr_matrix(
            (np.ones(len(rows)), (rows, parcel[rows])), shape=(len(labels), len(position))
        )
        self.sizes = np.bincount(parcel[rows], minlength=len(position)).astype(np.float64)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """(T, N) data -> (T, R) float64 parcel means."""
        if data.ndim != 2 or data.shape[1] != self.num_columns:
            raise ValueError(f"Expected data of shape (T, {self.num_columns}), found {data.shape}.")
        means = np.empty((data.shape[0], self.indicator.shape[1]))
        for start in range(0, data.shape[0], FRAMES_PER_BLOCK):
            block = data[start : start + FRAMES_PER_BLOCK]
            sums = block @ self.indicator
            sizes = self.sizes
            if not np.isfinite(sums).all():
                finite = np.isfinite(block)
                sums = np.where(finite, block, 0.0) @ self.indicator
                sizes = finite @ self.indicator
            with np.errstate(invalid="ignore", divide="ignore"):
                means[start : start + len(block)] = np.where(sizes > 0, sums / sizes, np.nan)
        return means


class Parcellator:
    """Parcel means of CIFTI dense series and 4-D NIfTI volumes with one atlas.

    Volumes on another grid than the atlas get the atlas resampled (nearest neighbour) onto their grid, never
    the data resampled; the averager of each grid met is kept for the next volume.
    """

    def __init__(self, atlas: Atlas):
        self.atlas = atlas
        self._cifti_averager: ParcelAverager | None = None
        self._volume_averagers: dict[bytes, tuple[tuple[np.ndarray, ...], ParcelAverager]] = {}

    def __getstate__(self) -> dict:
        """The state without the averagers built lazily from the atlas: pickles (worker processes) stay small and
        `datasets` fingerprints of a feature extractor do not change once it has parcellated something."""
        return {"atlas": self.atlas, "_cifti_averager": None, "_volume_averagers": {}}

    def cifti(self, image: nib.Cifti2Image, brain_models: nib.cifti2.BrainModelAxis, source: str) -> np.ndarray:
        """(T, R) parcel means of a dense CIFTI series (its grayordinates: `brain_models`, the atlas's)."""
        if self.atlas.brain_models is None:
            raise ValueError(f"{source} is a CIFTI dense series but the atlas has no CIFTI form (dlabel).")
        if brain_models != self.atlas.brain_models:
            raise ValueError(
                f"{source} has other brain models than the atlas: found {describe_brain_models(brain_models)}; "
                f"expected {describe_brain_models(self.atlas.brain_models)} (the grayordinates of "
                f"{getattr(self.atlas.files.get('cifti'), 'name', 'the atlas dlabel')!r})."
            )
        data = np.asanyarray(image.dataobj)
        if image.header.matrix.get_index_map(0).indices_map_to_data_type == "CIFTI_INDEX_TYPE_BRAIN_MODELS":
            data = data.T  # stored (grayordinates, time)
        if self._cifti_averager is None:
            self._cifti_averager = ParcelAverager(self.atlas.cifti_labels, self.atlas.keys)
        return self._cifti_averager(data)

    def volume(self, image: nib.Nifti1Image | nib.Nifti2Image, source: str) -> np.ndarray:
        """(T, R) parcel means of a 4-D volume (x, y, z, time), read FRAMES_PER_BLOCK frames at a time."""
        if self.atlas.volume_labels is None:
            raise ValueError(f"{source} is a NIfTI volume but the atlas has no volume form (label volume).")
        voxels, averager = self._volume_averager(image.shape[:3], image.affine)
        data = image.dataobj
        if nib.is_proxy(data) and image.file_map["image"].filename:
            # one open file for all blocks: a fresh open per block would decompress a .nii.gz from its start each time
            spec = (data.shape, data.dtype, data.offset, data.slope, data.inter)
            data = ArrayProxy(image.file_map["image"].filename, spec, keep_file_open=True)
        blocks = []
        for start in range(0, image.shape[3], FRAMES_PER_BLOCK):
            frames = np.asanyarray(data[..., start : start + FRAMES_PER_BLOCK])
            blocks.append(averager(frames[voxels].T))
        return np.concatenate(blocks) if blocks else np.empty((0, self.atlas.num_rois))

    def _volume_averager(
        self, shape: tuple[int, ...], affine: np.ndarray
    ) -> tuple[tuple[np.ndarray, ...], ParcelAverager]:
        """Indices of the labelled voxels of a grid and the averager of their labels (cached per grid)."""
        grid = np.asarray(shape, np.float64).tobytes() + np.round(np.asarray(affine, np.float64), 4).tobytes()
        if grid not in self._volume_averagers:
            labels = self.atlas.volume_labels_on_grid(shape, affine)
            voxels = np.nonzero(labels)
            self._volume_averagers[grid] = (voxels, ParcelAverager(labels[voxels], self.atlas.keys))
        return self._volume_averagers[grid]


def describe_brain_models(axis: nib.cifti2.BrainModelAxis) -> str:
    """A short description of a BrainModelAxis: grayordinate count, surface vertices and volume grid."""
    surfaces = ", ".join(f"{name.replace('CIFTI_STRUCTURE_', '')} {n} vertices" for name, n in axis.nvertices.items())
    volume = f"{int(axis.volume_mask.sum())} voxels on a {axis.volume_shape} grid" if axis.volume_shape else "no voxels"
    return f"{len(axis)} grayordinates ({surfaces or 'no surfaces'}; {volume})"
