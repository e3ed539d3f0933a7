"""MnemoDynFeatureExtractor end to end: inputs, TR, scaling, padding, switches, errors, save/load."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor

from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel
from mnemodyn_hf.preprocessing.robust_scaling import centre_frames
from mnemodyn_hf.preprocessing.temporal_resampling import resample_frames

from .synthetic import GRID_4MM_AFFINE, GRID_4MM_SHAPE, random_volume, write_ptseries

R = 450


@pytest.fixture(scope="module")
def raw():
    """No resampling, no scaling: plain parcel means."""
    return MnemoDynFeatureExtractor(do_resample=False, do_normalize=False)


@pytest.fixture(scope="module")
def resampling():
    """Resampling to the model's TR (0.735 s), no scaling."""
    return MnemoDynFeatureExtractor(do_normalize=False)


def series(num_frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num_frames, R)).cumsum(axis=0) + 100


# ---------------------------------------------------------------- inputs, batching, padding


def test_one_array_and_a_batch_with_padding(raw):
    single = raw(series(30))
    assert single["input_values"].shape == (1, 30, R) and single["input_values"].dtype == np.float32
    batch = raw([series(50), series(30, seed=1)], return_tensors="pt")
    assert batch["input_values"].shape == (2, 50, R) and batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].sum(dim=1).tolist() == [50, 30]
    assert torch.all(batch["input_values"][1, 30:] == 0)
    np.testing.assert_allclose(batch["input_values"][1, :30].numpy(), series(30, seed=1), rtol=1e-6)
    stacked = raw(np.stack([series(20), series(20, seed=2)]))
    assert stacked["input_values"].shape == (2, 20, R)


def test_max_length_truncation_and_multiple(raw):
    inputs = [series(50), series(30, seed=1)]
    cut = raw(inputs, padding="max_length", max_length=40, truncation=True)
    assert cut["input_values"].shape == (2, 40, R) and cut["attention_mask"].sum(axis=1).tolist() == [40, 30]
    multiple = raw(inputs, pad_to_multiple_of=32)
    assert multiple["input_values"].shape == (2, 64, R)


def test_tables_are_matched_to_the_atlas_by_name(raw, tmp_path):
    values = series(12)
    order = np.random.default_rng(3).permutation(R)
    names = [raw.roi_names[i] for i in order]
    tsv = tmp_path / "rois.tsv"
    tsv.write_text("\t".join(names) + "\n" + "\n".join("\t".join(f"{v:.17g}" for v in row[order]) for row in values))
    np.save(tmp_path / "rois.npy", values)
    csv = tmp_path / "rois.csv"
    csv.write_text("\n".join(",".join(f"{v:.17g}" for v in row) for row in values))  # no header: atlas order
    ptseries = tmp_path / "rois.ptseries.nii"
    write_ptseries(ptseries, values[:, order], names)
    for path in (tsv, tmp_path / "rois.npy", csv, ptseries):
        np.testing.assert_allclose(raw(path)["input_values"][0], values, rtol=1e-6, err_msg=str(path))


def test_reference_parcellated_dtseries_with_generic_parcel_names(raw, tmp_path):
    values = series(10)
    order = np.random.default_rng(4).permutation(R)
    scalars = nib.cifti2.ScalarAxis([f"Parcel_{i + 1}" for i in order])
    path = tmp_path / "sub_parcellated.dtseries.nii"
    nib.Cifti2Image(
        values[:, order].astype(np.float32), header=(nib.cifti2.SeriesAxis(0, 0.735, 10), scalars)
    ).to_filename(path)
    np.testing.assert_allclose(raw(path)["input_values"][0], values, rtol=1e-6)


def test_volume_on_another_grid_gets_the_atlas_resampled(raw):
    image = random_volume(6)
    labels = raw.atlas.volume_labels_on_grid(GRID_4MM_SHAPE, GRID_4MM_AFFINE)
    data = np.asanyarray(image.dataobj)
    expected = np.stack([data[labels == key].mean(axis=0) for key in raw.atlas.keys], axis=1)
    np.testing.assert_allclose(raw(image)["input_values"][0], expected, atol=1e-6)


def test_a_compressed_nifti_by_path_by_loaded_image_and_in_memory_agree(raw, tmp_path):
    image = random_volume(40)  # more frames than one block: read in several blocks from one open file
    path = tmp_path / "bold.nii.gz"
    image.to_filename(path)
    from_path = raw(path)["input_values"]
    np.testing.assert_array_equal(raw(nib.load(path))["input_values"], from_path)
    np.testing.assert_array_equal(raw(image)["input_values"], from_path)


# ---------------------------------------------------------------- repetition time


def test_tr_2s_becomes_the_model_tr(resampling):
    values = series(100)
    out = resampling(values, repetition_time=2.0)["input_values"][0]
    assert out.shape == (270, R)  # floor(99 * 2.0 / 0.735) + 1 frames, worked out by hand
    np.testing.assert_allclose(out, resample_frames(values, 2.0, 0.735), rtol=1e-6)


@pytest.mark.parametrize("time_unit", ["sec", "msec", "usec"])
def test_nifti_tr_is_read_in_its_time_unit(resampling, raw, time_unit):
    image = random_volume(30, repetition_time=2.0, time_unit=time_unit)
    out = resampling(image)["input_values"][0]
    assert out.shape == (79, R)  # floor(29 * 2.0 / 0.735) + 1
    np.testing.assert_allclose(out, resample_frames(raw(image)["input_values"][0], 2.0, 0.735), rtol=1e-5, atol=1e-6)


def test_cifti_tr_is_read_from_the_series_axis(resampling, tmp_path):
    path = tmp_path / "tr2.ptseries.nii"
    write_ptseries(path, series(30), list(resampling.roi_names), repetition_time=2.0)
    assert resampling(path)["input_values"].shape == (1, 79, R)


def test_caller_tr_overrides_the_header_with_a_warning(resampling, tmp_path):
    path = tmp_path / "tr2.ptseries.nii"
    write_ptseries(path, series(30), list(resampling.roi_names), repetition_time=2.0)
    with pytest.warns(UserWarning, match=r"repetition_time=1.0 s was given but its header says 2 s"):
        out = resampling(path, repetition_time=1.0)
    assert out["input_values"].shape[1] == 40  # floor(29 * 1.0 / 0.735) + 1


def test_switching_resampling_off_keeps_the_frames():
    values = series(30)
    for extractor in (
        MnemoDynFeatureExtractor(do_resample=False, do_normalize=False),
        MnemoDynFeatureExtractor(target_repetition_time=None, do_normalize=False),
    ):
        np.testing.assert_allclose(extractor(values)["input_values"][0], values, rtol=1e-6)


# ---------------------------------------------------------------- robust scaling


def test_fit_streams_a_corpus_and_scaling_uses_its_statistics(tmp_path):
    corpus = [series(40 + 10 * i, seed=i) * (1 + np.arange(R) / 100) for i in range(5)]
    extractor = MnemoDynFeatureExtractor()
    extractor.fit((x for x in corpus), repetition_time=1.5)  # a generator: nothing is stacked
    pooled = np.concatenate([centre_frames(resample_frames(x, 1.5, 0.735)) for x in corpus])
    exact_median = np.quantile(pooled, 0.5, axis=0)
    exact_iqr = np.quantile(pooled, 0.75, axis=0) - np.quantile(pooled, 0.25, axis=0)
    assert np.all(np.abs(np.array(extractor.roi_median) - exact_median) <= 0.005 * np.abs(exact_median) + 1e-9)
    assert np.allclose(extractor.roi_iqr, exact_iqr, rtol=0.01)
    scaled = extractor(corpus[0], repetition_time=1.5)["input_values"][0]
    expected = (centre_frames(resample_frames(corpus[0], 1.5, 0.735)) - extractor.roi_median) / extractor.roi_iqr
    np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-6)


def test_normalizing_without_statistics_is_an_error():
    with pytest.raises(ValueError, match=r"do_normalize=True needs the robust-scaling statistics.*fit\(corpus\)"):
        MnemoDynFeatureExtractor()(series(10), repetition_time=0.735)


def test_fit_warns_about_constant_rois():
    corpus = [series(30, seed=i) for i in range(2)]
    for x in corpus:
        x[:, 7] = 3.0
    with pytest.warns(UserWarning, match=r"1 ROIs are constant.*THA-VAs-rh"):
        extractor = MnemoDynFeatureExtractor(do_resample=False).fit(corpus)
    assert np.all(extractor(corpus[0])["input_values"][0, :, 7] == 0)


# ---------------------------------------------------------------- errors that teach


def test_3d_volume_is_an_error(raw, tmp_path):
    path = tmp_path / "anat.nii.gz"
    nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.eye(4)).to_filename(path)
    with pytest.raises(ValueError, match=r"anat\.nii\.gz' is a 3-D volume of shape \(4, 5, 6\); expected a 4-D fMRI"):
        raw(path)


def test_cifti_with_other_brain_models_is_an_error(raw, tmp_path):
    cortex_only = raw.atlas.brain_models[:59412]
    path = tmp_path / "cortex.dtseries.nii"
    nib.Cifti2Image(
        np.zeros((3, 59412), np.float32), header=(nib.cifti2.SeriesAxis(0, 0.72, 3), cortex_only)
    ).to_filename(path)
    with pytest.raises(
        ValueError, match=r"cortex\.dtseries\.nii' has other brain models.*found 59412 .*expected 91282"
    ):
        raw(path)


def test_ptseries_with_unknown_roi_names_is_an_error(raw, tmp_path):
    names = list(raw.roi_names)
    names[3], names[10] = "Thalamus_L", "Putamen_R"
    path = tmp_path / "other_atlas.ptseries.nii"
    write_ptseries(path, series(5), names)
    with pytest.raises(
        ValueError, match=r"other_atlas\.ptseries\.nii' has 450 ROI columns, 2 of them unknown.*Thalamus_L"
    ):
        raw(path)


def test_missing_tr_is_an_error(resampling):
    with pytest.raises(
        ValueError, match=r"input #0 \(ndarray of shape \(20, 450\)\): missing repetition time.*repetition_time="
    ):
        resampling(series(20))
    image = random_volume(5, time_unit="unknown")
    with pytest.raises(ValueError, match=r"missing repetition time.*time unit is 'unknown' \(pixdim\[4\] = 2\)"):
        resampling(image)


def test_all_nan_parcel_warns_and_is_filled_with_zero(raw):
    image = random_volume(4)
    labels = raw.atlas.volume_labels_on_grid(GRID_4MM_SHAPE, GRID_4MM_AFFINE)
    data = np.asanyarray(image.dataobj).copy()
    data[labels == 3] = np.nan  # HIP-body-rh: no finite voxel
    data[labels == 100, 2] = np.nan  # one frame of a cortical parcel
    with pytest.warns(UserWarning, match=r"1 ROIs have no finite value \(all-NaN parcel.*HIP-body-rh.*filled with 0"):
        out = raw(nib.Nifti1Image(data, GRID_4MM_AFFINE))["input_values"][0]
    assert np.all(out[:, 2] == 0) and np.all(np.isfinite(out))
    assert np.isclose(out[2, 99], np.delete(out[:, 99], 2).mean())


def test_empty_and_corrupt_files_are_errors(raw, tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.touch()
    with pytest.raises(ValueError, match=r"empty\.nii\.gz' is empty \(0 bytes\); expected"):
        raw(empty)
    garbage = tmp_path / "garbage.dtseries.nii"
    garbage.write_bytes(b"not a nifti file at all" * 40)
    with pytest.raises(ValueError, match=r"garbage\.dtseries\.nii' could not be read as NIfTI or CIFTI-2"):
        raw(garbage)
    whole = tmp_path / "whole.nii.gz"
    random_volume(6).to_filename(whole)
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.nii\.gz' could not be read \(truncated or corrupt file\?\)"):
        raw(truncated)
    with pytest.raises(FileNotFoundError, match=r"missing\.nii\.gz' does not exist"):
        raw(tmp_path / "missing.nii.gz")
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match=r"bad\.npy' could not be read as a \.npy array"):
        raw(tmp_path / "bad.npy")
    (tmp_path / "header_only.csv").write_text("a,b,c\n")
    with pytest.raises(ValueError, match=r"header_only\.csv' has no data rows"):
        raw(tmp_path / "header_only.csv")
    with pytest.raises(ValueError, match=r"has shape \(450, 30\); expected \(T, 450\).*transposed"):
        raw(series(30).T)


# ---------------------------------------------------------------- save / load


def test_save_and_load_carry_atlas_and_statistics_to_another_folder(tmp_path):
    corpus = [series(30, seed=i) for i in range(3)]
    extractor = MnemoDynFeatureExtractor(do_resample=False).fit(corpus)
    saved = tmp_path / "machine_a"
    extractor.save_pretrained(saved)
    config = json.loads((saved / "preprocessor_config.json").read_text())
    assert config["feature_extractor_type"] == "MnemoDynFeatureExtractor"
    assert config["roi_names"] == list(extractor.roi_names) and len(config["roi_median"]) == R
    assert config["atlas_files"] is None  # the shipped atlas comes with the package
    assert sorted(path.name for path in saved.iterdir()) == ["preprocessor_config.json"]
    moved = shutil.copytree(saved, tmp_path / "machine_b")
    shutil.rmtree(saved)
    loaded = AutoFeatureExtractor.from_pretrained(moved)
    assert isinstance(loaded, MnemoDynFeatureExtractor)
    assert loaded.atlas.names == extractor.atlas.names
    np.testing.assert_array_equal(loaded(corpus[1])["input_values"], extractor(corpus[1])["input_values"])
    assert loaded.to_dict() == extractor.to_dict()
    from_json = MnemoDynFeatureExtractor.from_pretrained(moved / "preprocessor_config.json")
    assert from_json.roi_iqr == extractor.roi_iqr


def test_a_user_atlas_travels_with_the_saved_folder(tmp_path):
    labels = np.zeros(GRID_4MM_SHAPE, np.int16)
    labels[:23], labels[23:] = 2, 5
    nib.Nifti1Image(labels, GRID_4MM_AFFINE).to_filename(tmp_path / "halves.nii.gz")
    (tmp_path / "halves.tsv").write_text("key\tname\n2\tright\n5\tleft\n")
    extractor = MnemoDynFeatureExtractor(
        atlas_files={"volume": str(tmp_path / "halves.nii.gz"), "labels": str(tmp_path / "halves.tsv")},
        do_resample=False,
        do_normalize=False,
    )
    extractor.save_pretrained(tmp_path / "saved")
    (tmp_path / "halves.nii.gz").unlink()
    (tmp_path / "halves.tsv").unlink()
    config = json.loads((tmp_path / "saved" / "preprocessor_config.json").read_text())
    assert {form: entry["name"] for form, entry in config["atlas_files"].items()} == {
        "volume": "halves.nii.gz",
        "labels": "halves.tsv",
    }
    image = random_volume(3)
    for loaded in (
        MnemoDynFeatureExtractor.from_pretrained(tmp_path / "saved"),
        AutoFeatureExtractor.from_pretrained(tmp_path / "saved"),
        MnemoDynFeatureExtractor.from_dict(config),
    ):
        assert loaded.roi_names == ["right", "left"] and loaded.feature_size == 2
        np.testing.assert_array_equal(loaded(image)["input_values"], extractor(image)["input_values"])
        assert loaded.to_dict() == extractor.to_dict()


def test_an_edited_embedded_atlas_and_a_legacy_config_get_the_fix(tmp_path):
    (tmp_path / "halves.tsv").write_text("key\tname\n2\tright\n5\tleft\n")
    extractor = MnemoDynFeatureExtractor(atlas_files={"labels": str(tmp_path / "halves.tsv")}, do_normalize=False)
    config = extractor.to_dict()
    edited = {**config["atlas_files"]["labels"], "sha256": "0" * 64}
    with pytest.raises(ValueError, match=r"does not match its sha256.*save the feature extractor again"):
        MnemoDynFeatureExtractor.from_dict({**config, "atlas_files": {"labels": edited}})
    legacy = {**config, "atlas_files": {"labels": "halves.tsv"}}  # names a file next to the config (0.1)
    with pytest.raises(FileNotFoundError, match=r"atlas_files=\{'labels': '<folder>/halves.tsv'\}"):
        MnemoDynFeatureExtractor.from_dict(legacy)
    loaded = MnemoDynFeatureExtractor.from_dict(legacy, atlas_files={"labels": str(tmp_path / "halves.tsv")})
    assert loaded.roi_names == ["right", "left"]


def test_mismatched_roi_names_are_an_error():
    with pytest.raises(ValueError, match=r"roi_names .* do not match the atlas's 450 ROI names"):
        MnemoDynFeatureExtractor(roi_names=["a", "b"])


# ---------------------------------------------------------------- into the model


def test_outputs_feed_the_model():
    config = MnemoDynConfig(
        num_layers=1,
        projection_size=8,
        latent_channels=4,
        wavelet_levels=2,
        num_regions=2,
        num_coarse_layers=1,
        context_length=32,
    )
    model = MnemoDynModel(config).eval()
    extractor = MnemoDynFeatureExtractor(target_repetition_time=config.repetition_time, do_normalize=False)
    batch = extractor([series(30), series(20, seed=1)], repetition_time=1.0, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == batch["input_values"].shape
