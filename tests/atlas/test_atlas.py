"""The shipped 450-ROI atlas (its label arrays, names and order, its rebuild) and user-supplied atlases."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mnemodyn_hf.atlas import DEFAULT_ATLAS_FILES, load_atlas

REPO = Path(__file__).resolve().parents[2]

#: offline_data.md §3.3: dlabel label array as int32 (91282,), volume as int16 (91, 109, 91), C order.
CIFTI_LABELS_SHA256 = "126acb70c67a4cc319732d4eaf3be2076780ebc2e347e1c00c1d992826a0e56d"
VOLUME_LABELS_SHA256 = "3059c312de380b794542f434fc8bfa858174c170e11031a394a7e9e03ab900a7"

#: The reference dlabel's Tian S3 structures (keys 1-25 right hemisphere, 26-50 left), reference_implementation.md §8.
TIAN_S3 = (
    "HIP-head-m HIP-head-l HIP-body HIP-tail THA-VPm THA-VPl THA-VAi THA-VAs THA-DAm THA-DAl PUT-VA PUT-DA PUT-VP "
    "PUT-DP CAU-VA CAU-DA CAU-body CAU-tail lAMY mAMY THA-DP NAc-shell NAc-core pGP aGP"
).split()


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def atlas():
    return load_atlas()


def test_shipped_label_arrays_match_the_published_sha256(atlas):
    assert atlas.cifti_labels.shape == (91282,)
    assert sha256(atlas.cifti_labels.astype(np.int32)) == CIFTI_LABELS_SHA256
    assert atlas.volume_labels.shape == (91, 109, 91)
    assert sha256(atlas.volume_labels.astype(np.int16)) == VOLUME_LABELS_SHA256


def test_names_and_order_match_the_reference(atlas):
    assert atlas.num_rois == 450
    assert atlas.keys.tolist() == list(range(1, 451))
    assert list(atlas.names[:25]) == [f"{name}-rh" for name in TIAN_S3]
    assert list(atlas.names[25:50]) == [f"{name}-lh" for name in TIAN_S3]
    assert all(name.startswith("7Networks_LH_") for name in atlas.names[50:250])
    assert all(name.startswith("7Networks_RH_") for name in atlas.names[250:])
    assert atlas.names[50] == "7Networks_LH_Vis_1" and atlas.names[-1] == "7Networks_RH_Default_pCunPCC_9"
    networks = Counter(name.split("_")[2] for name in atlas.names[50:])
    assert networks == {
        "Vis": 61,
        "SomMot": 77,
        "DorsAttn": 46,
        "SalVentAttn": 47,
        "Limbic": 26,
        "Cont": 52,
        "Default": 91,
    }


def test_shipped_forms_and_label_table_agree(atlas):
    with open(DEFAULT_ATLAS_FILES["labels"], newline="") as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    assert [int(row["key"]) for row in table] == atlas.keys.tolist()
    assert tuple(row["name"] for row in table) == atlas.names
    # reference_implementation.md §8: 58,606 labelled cortical vertices, 7,277 subcortical voxels
    assert (
        int((atlas.cifti_labels > 50).sum()) == 58606
        and int(((atlas.cifti_labels > 0) & (atlas.cifti_labels <= 50)).sum()) == 7277
    )
    assert np.array_equal(np.unique(atlas.volume_labels[atlas.volume_labels > 0]), atlas.keys)
    assert atlas.brain_models.volume_shape == atlas.volume_labels.shape
    assert np.allclose(atlas.brain_models.affine, atlas.volume_affine)


def test_rebuild_script_reproduces_the_shipped_files(tmp_path, atlas):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_atlas.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rebuilt = load_atlas(*(tmp_path / Path(DEFAULT_ATLAS_FILES[form]).name for form in ("cifti", "volume", "labels")))
    assert np.array_equal(rebuilt.cifti_labels, atlas.cifti_labels)
    assert np.array_equal(rebuilt.volume_labels, atlas.volume_labels)
    assert rebuilt.names == atlas.names
    assert rebuilt.brain_models == atlas.brain_models


def write_volume_atlas(
    tmp_path: Path, labels: np.ndarray, names: dict[int, str] | None = None
) -> tuple[Path, Path | None]:
    volume = tmp_path / "atlas.nii.gz"
    nib.Nifti1Image(labels.astype(np.int16), np.diag([3.0, 3, 3, 1])).to_filename(volume)
    if names is None:
        return volume, None
    table = tmp_path / "atlas_labels.tsv"
    table.write_text("key\tname\n" + "".join(f"{key}\t{name}\n" for key, name in names.items()))
    return volume, table


def test_user_volume_atlas_with_and_without_names(tmp_path):
    labels = np.zeros((4, 4, 4), int)
    labels[:2], labels[2:, :2], labels[3, 3, 3] = 7, 3, 12
    volume, table = write_volume_atlas(tmp_path, labels, {3: "motor", 7: "visual", 12: "tiny"})
    named = load_atlas(volume=volume, labels=table)
    assert named.keys.tolist() == [3, 7, 12] and named.names == ("motor", "visual", "tiny")
    assert named.cifti_labels is None and named.volume_labels.shape == (4, 4, 4)
    assert load_atlas(volume=volume).names == ("Parcel_3", "Parcel_7", "Parcel_12")


def test_user_dlabel_atlas_reads_its_label_table(tmp_path, atlas):
    axis = atlas.brain_models
    labels = np.where(atlas.cifti_labels > 250, 2, np.where(atlas.cifti_labels > 50, 1, 0))
    label_axis = nib.cifti2.LabelAxis(
        ["halves"], [{0: ("???", (0, 0, 0, 0)), 1: ("left", (1, 0, 0, 1)), 2: ("right", (0, 0, 1, 1))}]
    )
    path = tmp_path / "halves.dlabel.nii"
    nib.Cifti2Image(labels[None].astype(np.float32), header=(label_axis, axis)).to_filename(path)
    halves = load_atlas(cifti=path)
    assert halves.names == ("left", "right") and halves.brain_models == axis and halves.volume_labels is None


def test_atlas_errors_name_the_file(tmp_path, atlas):
    with pytest.raises(FileNotFoundError, match="nowhere.dlabel.nii"):
        load_atlas(cifti=tmp_path / "nowhere.dlabel.nii")
    labels = np.zeros((91, 109, 91), int)
    labels[0, 0, 0] = 1
    volume, _ = write_volume_atlas(tmp_path, labels)
    with pytest.raises(ValueError, match=r"Atlas forms disagree.*450 parcels.*has 1"):
        load_atlas(cifti=DEFAULT_ATLAS_FILES["cifti"], volume=volume)
    four_d = tmp_path / "four_d.nii.gz"
    nib.Nifti1Image(np.ones((2, 2, 2, 3), np.int16), np.eye(4)).to_filename(four_d)
    with pytest.raises(ValueError, match=r"four_d.nii.gz.*\(2, 2, 2, 3\); expected a 3-D label volume"):
        load_atlas(volume=four_d)


def test_a_label_table_alone_reads_parcellated_tables_but_refuses_images(tmp_path):
    """An atlas without a spatial form (e.g. data parcellated elsewhere): ROI tables by name, never images."""
    from mnemodyn_hf import MnemoDynFeatureExtractor
    from mnemodyn_hf.data.sample_recordings import make_real_dtseries

    labels = tmp_path / "labels.tsv"
    labels.write_text("key\tname\n2\tbeta\n1\talpha\n3\tgamma\n")
    atlas = load_atlas(labels=labels)
    assert atlas.names == ("alpha", "beta", "gamma") and atlas.cifti_labels is None and atlas.volume_labels is None
    extractor = MnemoDynFeatureExtractor(atlas_files={"labels": str(labels)}, do_resample=False, do_normalize=False)
    table = tmp_path / "rois.tsv"
    table.write_text("gamma\talpha\tbeta\n3\t1\t2\n6\t4\t5\n")  # columns in another order
    assert extractor([table])["input_values"][0].tolist() == [[1, 2, 3], [4, 5, 6]]
    extractor.save_pretrained(tmp_path / "saved")
    reloaded = MnemoDynFeatureExtractor.from_pretrained(tmp_path / "saved")
    assert reloaded.roi_names == ["alpha", "beta", "gamma"]
    with pytest.raises(ValueError, match="the atlas has no CIFTI form"):
        extractor([make_real_dtseries(tmp_path / "real.dtseries.nii", num_frames=5)])


def test_volume_labels_on_another_grid_are_nearest_neighbour(atlas):
    assert atlas.volume_labels_on_grid(atlas.volume_labels.shape, atlas.volume_affine) is atlas.volume_labels
    # a 4 mm grid with the same origin samples every other 2 mm voxel exactly
    affine = atlas.volume_affine.copy()
    affine[:3, :3] *= 2
    coarse = atlas.volume_labels_on_grid((46, 55, 46), affine)
    assert np.array_equal(coarse, atlas.volume_labels[::2, ::2, ::2])
    # a grid shifted by a whole voxel: labels move by one voxel; voxels outside the atlas get 0
    shifted = atlas.volume_affine.copy()
    shifted[:3, 3] += atlas.volume_affine[:3, :3] @ [1, 0, 0]
    moved = atlas.volume_labels_on_grid(atlas.volume_labels.shape, shifted)
    assert np.array_equal(moved[:-1], atlas.volume_labels[1:]) and not moved[-1].any()


def test_templates_are_the_shipped_atlas_s_or_what_file_names_state(tmp_path):
    import shutil

    from mnemodyn_hf.atlas import DEFAULT_ATLAS_FILES

    assert load_atlas().templates == {"cifti": "fsLR", "volume": "MNI152NLin6Asym"}
    renamed = tmp_path / "tpl-MNI152NLin2009cAsym_res-02_atlas-Schaefer_dseg.nii.gz"
    shutil.copyfile(DEFAULT_ATLAS_FILES["volume"], renamed)
    assert load_atlas(volume=renamed).templates == {"volume": "MNI152NLin2009cAsym"}
    shutil.copyfile(DEFAULT_ATLAS_FILES["volume"], tmp_path / "my_atlas.nii.gz")
    assert load_atlas(volume=tmp_path / "my_atlas.nii.gz").templates == {"volume": None}
