"""The parcellation the feature extractor averages into: R named parcels as a CIFTI dlabel and/or a label volume."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .atlas_file import AtlasFile

#: Folder of the shipped atlas files (package data).
ATLAS_DATA_DIR = Path(__file__).resolve().parent / "data"

#: The shipped 450-ROI atlas: Tian S3 subcortex (keys 1-50) + Schaefer-400 7 networks (keys 51-450).
DEFAULT_ATLAS_FILES = {
    "cifti": ATLAS_DATA_DIR / "Schaefer400_7N_TianS3.dlabel.nii",
    "volume": ATLAS_DATA_DIR / "Schaefer400_7N_TianS3_MNI152NLin6Asym_2mm.nii.gz",
    "labels": ATLAS_DATA_DIR / "Schaefer400_7N_TianS3_labels.tsv",
}

#: ROI count of the shipped atlas (50 Tian S3 + 400 Schaefer parcels); checked against the files in the tests.
SHIPPED_ATLAS_ROIS = 450

#: Template space of each form of the shipped atlas (the `space-` entity of the fMRIPrep outputs it fits).
SHIPPED_ATLAS_TEMPLATES = {"cifti": "fsLR", "volume": "MNI152NLin6Asym"}

#: The forms an atlas can come in, as accepted by `load_atlas` (and stored in a feature extractor's config).
ATLAS_FORMS = ("cifti", "volume", "labels")


@dataclass(frozen=True, eq=False)
class Atlas:
    """A brain parcellation into R parcels, each a label key > 0 (0 is background).

    Columns of parcellated data follow ascending label keys (the MnemoDyn reference order).

    Attributes:
        keys: (R,) label keys, ascending.
        names: R parcel names, in the order of `keys`.
        cifti_labels: (N,) label key of each grayordinate, or `None` without a CIFTI form.
        brain_models: the N grayordinates of the CIFTI form (`nibabel.cifti2.BrainModelAxis`), or `None`.
        volume_labels: (X, Y, Z) label key of each voxel, or `None` without a volume form.
        volume_affine: (4, 4) voxel-to-world (mm) affine of `volume_labels`, or `None`.
        files: the files the atlas was read from (names and bytes), by form (`"cifti"`, `"volume"`, `"labels"`).
    """

    keys: np.ndarray
    names: tuple[str, ...]
    cifti_labels: np.ndarray | None
    brain_models: nib.cifti2.BrainModelAxis | None
    volume_labels: np.ndarray | None
    volume_affine: np.ndarray | None
    files: dict[str, AtlasFile]

    @property
    def num_rois(self) -> int:
        return len(self.keys)

    @property
    def templates(self) -> dict[str, str | None]:
        """Template space of the `"cifti"` and `"volume"` forms: the shipped atlas's, or what the file names state
        (`space-` / `tpl-` entity); None where unknown or absent."""
        return {
            form: SHIPPED_ATLAS_TEMPLATES[form] if file.name == DEFAULT_ATLAS_FILES[form].name else file.template
            for form, file in self.files.items()
            if form in SHIPPED_ATLAS_TEMPLATES
        }

    def check_names(self, roi_names: Sequence[str]) -> None:
        """Raise ValueError unless `roi_names` are the atlas's parcel names in column order."""
        if list(roi_names) != list(self.names):
            mismatch = next((i for i, (a, b) in enumerate(zip(roi_names, self.names, strict=False)) if a != b), None)
            files = sorted(file.name for file in self.files.values())
            raise ValueError(
                f"roi_names ({len(roi_names)} names) do not match the atlas's {self.num_rois} ROI names "
                f"(first difference at column {mismatch}); expected the names of {files}."
            )

    def volume_labels_on_grid(self, shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
        """The label volume resampled (nearest neighbour) onto another voxel grid.

        Args:
            shape: (X', Y', Z') of the target grid.
            affine: (4, 4) voxel-to-world affine of the target grid.

        Returns:
            (X', Y', Z') int32 label keys; target voxels whose centre falls outside the atlas volume get 0.
        """
        if self.volume_labels is None:
            raise ValueError("This atlas has no volume form; load it with load_atlas(volume=...) to parcellate NIfTI.")
        shape = tuple(int(n) for n in shape)
        if shape == self.volume_labels.shape and np.allclose(affine, self.volume_affine, atol=1e-4):
            return self.volume_labels
        to_atlas_voxels = np.linalg.inv(self.volume_affine) @ np.asarray(affine, dtype=np.float64)
        grid = np.indices(shape, dtype=np.float64).reshape(3, -1)
        ijk = to_atlas_voxels[:3, :3] @ grid + to_atlas_voxels[:3, 3:]
        ijk = np.floor(ijk + 0.5).astype(np.int64)  # round half up, as scipy's order-0 interpolation
        inside = np.all((ijk >= 0) & (ijk < np.array(self.volume_labels.shape)[:, None]), axis=0)
        labels = np.zeros(ijk.shape[1], np.int32)
        labels[inside] = self.volume_labels[tuple(ijk[:, inside])]
        return labels.reshape(shape)


def load_atlas(
    cifti: str | os.PathLike | AtlasFile | None = None,
    volume: str | os.PathLike | AtlasFile | None = None,
    labels: str | os.PathLike | AtlasFile | None = None,
) -> Atlas:
    """Read an atlas; with no argument, the shipped 450-ROI Schaefer-400 (7 networks) + Tian S3 atlas.

    Args:
        cifti: a CIFTI-2 dense label file (`.dlabel.nii`, one label map); parcel names come from its label table.
        volume: a 3-D label volume (NIfTI, integer keys, 0 = background).
        labels: a TSV table with columns `key` and `name` naming the parcels (needed to name a volume-only
            atlas, whose parcels are otherwise called `Parcel_<key>`; checked against the dlabel's names).

    Each file is a path or an `AtlasFile` (name and bytes, e.g. embedded in a saved config). Both forms may be given;
    they must then hold the same parcels (label keys). A label table alone describes an atlas without a spatial
    form: data already parcellated with it (ROI tables, arrays) can be read, images cannot.
    """
    if cifti is None and volume is None and labels is None:
        return _load_default_atlas()
    given = (("cifti", cifti), ("volume", volume), ("labels", labels))
    files = {
        form: file if isinstance(file, AtlasFile) else AtlasFile.read(file, form)
        for form, file in given
        if file is not None
    }

    cifti_labels = brain_models = volume_labels = volume_affine = None
    names_by_key: dict[int, str] = {}
    keys = None
    if cifti is not None:
        cifti_labels, brain_models, names_by_key = _read_dlabel(files["cifti"])
        keys = np.unique(cifti_labels[cifti_labels > 0])
    if volume is not None:
        volume_labels, volume_affine = _read_label_volume(files["volume"])
        volume_keys = np.unique(volume_labels[volume_labels > 0])
        if keys is not None and not np.array_equal(keys, volume_keys):
            only_cifti = np.setdiff1d(keys, volume_keys)[:5].tolist()
            only_volume = np.setdiff1d(volume_keys, keys)[:5].tolist()
            raise ValueError(
                f"Atlas forms disagree: {files['cifti'].name!r} has {len(keys)} parcels and {files['volume'].name!r} "
                f"has {len(volume_keys)}; expected the same label keys (only in the dlabel: {only_cifti}, only in "
                f"the volume: {only_volume})."
            )
        keys = volume_keys
    if labels is not None:
        table = _read_label_table(files["labels"])
        if names_by_key and any(table.get(key) != names_by_key.get(key) for key in keys.tolist()):
            key = next(k for k in keys.tolist() if table.get(k) != names_by_key.get(k))
            raise ValueError(
                f"Atlas label table {files['labels'].name!r} names key {key} {table.get(key)!r}, but the dlabel "
                f"{files['cifti'].name!r} names it {names_by_key.get(key)!r}; expected the same names."
            )
        names_by_key = table
        if keys is None:  # labels only
            keys = np.asarray(sorted(table), dtype=np.int64)
    names = tuple(names_by_key.get(key, f"Parcel_{key}") for key in keys.tolist())
    if len(set(names)) != len(names):
        raise ValueError(
            f"Atlas parcel names must be unique; found duplicates in {sorted(f.name for f in files.values())}."
        )
    for array in (cifti_labels, volume_labels, volume_affine):
        if array is not None:
            array.flags.writeable = False
    return Atlas(
        keys=keys.astype(np.int64),
        names=names,
        cifti_labels=cifti_labels,
        brain_models=brain_models,
        volume_labels=volume_labels,
        volume_affine=volume_affine,
        files=files,
    )


def atlas_files_for_rois(num_rois: int, atlas_labels: str | os.PathLike | None) -> dict[str, object] | None:
    """The `atlas_files` of data parcellated into `num_rois` columns: the label table `atlas_labels` when given,
    None (the shipped atlas) for its 450 ROIs, else an embedded label table naming the columns `ROI_001`, ..."""
    if atlas_labels is not None:
        return {"labels": str(atlas_labels)}
    if num_rois == SHIPPED_ATLAS_ROIS:
        return None
    rows = "".join(f"{key}\tROI_{key:03d}\n" for key in range(1, num_rois + 1))
    return {"labels": AtlasFile("roi_labels.tsv", ("key\tname\n" + rows).encode()).to_json()}


@functools.lru_cache(maxsize=1)
def _load_default_atlas() -> Atlas:
    """The shipped atlas, read once per process (its arrays are shared: treat them as read-only)."""
    return load_atlas(**DEFAULT_ATLAS_FILES)


def _read_dlabel(file: AtlasFile) -> tuple[np.ndarray, nib.cifti2.BrainModelAxis, dict[int, str]]:
    """(N,) int32 label keys, the BrainModelAxis and {key: name} of a one-map CIFTI-2 dense label file."""
    path = file.name
    try:
        image = nib.Cifti2Image.from_bytes(file.content)
        label_axis, brain_models = (image.header.get_axis(i) for i in range(2))
    except Exception as error:  # nibabel raises many types for unreadable files
        raise ValueError(f"Atlas file {path!r} could not be read as a CIFTI-2 dlabel: {error}") from error
    if not isinstance(label_axis, nib.cifti2.LabelAxis) or not isinstance(brain_models, nib.cifti2.BrainModelAxis):
        raise ValueError(
            f"Atlas file {path!r} has axes ({type(label_axis).__name__}, {type(brain_models).__name__}); "
            "expected a dense label file (LabelAxis, BrainModelAxis)."
        )
    if len(label_axis) != 1:
        raise ValueError(f"Atlas file {path!r} has {len(label_axis)} label maps; expected one.")
    values = np.asanyarray(image.dataobj)[0]
    keys = np.rint(values).astype(np.int32)
    if not np.array_equal(keys, values):
        raise ValueError(f"Atlas file {path!r} holds non-integer labels; expected integer keys.")
    names = {int(key): name for key, (name, _) in label_axis.label[0].items() if key > 0}
    return keys, brain_models, names


def _read_label_volume(file: AtlasFile) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y, Z) int32 label keys and the (4, 4) affine of a 3-D label volume (NIfTI-1 or -2, gzipped or not)."""
    path = file.name
    try:
        image = _nifti_from_bytes(file.content)
        values = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for unreadable files
        raise ValueError(f"Atlas file {path!r} could not be read as a label volume: {error}") from error
    while values.ndim > 3 and values.shape[-1] == 1:  # (X, Y, Z, 1) label volumes are common
        values = values[..., 0]
    if values.ndim != 3:
        raise ValueError(f"Atlas file {path!r} has shape {values.shape}; expected a 3-D label volume.")
    keys = np.rint(values).astype(np.int32)
    if not np.array_equal(keys, values):
        raise ValueError(f"Atlas file {path!r} holds non-integer labels; expected integer keys.")
    return keys, image.affine.astype(np.float64)


def _nifti_from_bytes(content: bytes) -> nib.Nifti1Image | nib.Nifti2Image:
    if content[:2] == b"\x1f\x8b":  # gzip magic: a .nii.gz
        content = gzip.decompress(content)
    try:
        return nib.Nifti1Image.from_bytes(content)
    except Exception:  # not a NIfTI-1 header: try NIfTI-2, whose error then names the problem
        return nib.Nifti2Image.from_bytes(content)


def _read_label_table(file: AtlasFile) -> dict[int, str]:
    """{key: name} from a TSV with columns `key` and `name`."""
    path = file.name
    rows = list(csv.DictReader(io.StringIO(file.content.decode("utf-8"), newline=""), delimiter="\t"))
    if not rows or not {"key", "name"} <= set(rows[0]):
        raise ValueError(f"Atlas label table {path!r} must be a TSV with columns 'key' and 'name'.")
    return {int(row["key"]): row["name"] for row in rows}
