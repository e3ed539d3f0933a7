"""Reading one input: kinds, header repetition times, ROI column matching, messages."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from mnemodyn_hf.preprocessing.fmri_inputs import describe_source, match_roi_columns, read_recording

from ..feature_extraction.synthetic import random_volume, write_ptseries

NAMES = ["a", "b", "c"]


@pytest.mark.parametrize("unit, pixdim, expected", [("sec", 0.8, 0.8), ("msec", 800.0, 0.8), ("usec", 8e5, 0.8)])
def test_nifti_repetition_time_in_its_unit(unit, pixdim, expected):
    image = random_volume(2)
    image.header.set_xyzt_units("mm", unit)
    image.header["pixdim"][4] = pixdim
    recording = read_recording(image)
    assert recording.kind == "volume" and np.isclose(recording.repetition_time, expected)


@pytest.mark.parametrize(
    "unit, pixdim, note",
    [("unknown", 2.0, "time unit is 'unknown'"), ("hz", 2.0, "time unit is 'hz'"), ("sec", 0.0, "pixdim[4] = 0")],
)
def test_nifti_without_a_usable_repetition_time(unit, pixdim, note):
    image = random_volume(2)
    image.header.set_xyzt_units("mm", unit)
    image.header["pixdim"][4] = pixdim
    recording = read_recording(image)
    assert recording.repetition_time is None and note in recording.repetition_time_note


def test_ptseries_is_a_named_table_with_the_series_step(tmp_path):
    write_ptseries(tmp_path / "x.ptseries.nii", np.arange(6.0).reshape(2, 3), NAMES, repetition_time=1.5)
    recording = read_recording(tmp_path / "x.ptseries.nii")
    assert recording.kind == "table" and recording.column_names == NAMES and recording.repetition_time == 1.5
    np.testing.assert_array_equal(recording.values, np.arange(6.0).reshape(2, 3))


def test_tables_arrays_tensors_and_dataframes(tmp_path):
    (tmp_path / "t.tsv").write_text("a\tb\tc\n1\tn/a\t3\n4\t5\t6\n")
    tsv = read_recording(tmp_path / "t.tsv")
    assert tsv.column_names == NAMES and np.isnan(tsv.values[0, 1]) and tsv.values[1, 2] == 6
    frame = read_recording(pd.DataFrame(np.ones((4, 3)), columns=NAMES))
    assert frame.column_names == NAMES and frame.repetition_time is None
    assert read_recording(torch.ones(4, 3)).values.shape == (4, 3)
    assert read_recording(pd.DataFrame(np.ones((4, 3)))).column_names is None  # numbered columns: no names


def test_roi_columns_by_name_and_by_reference_parcel_number():
    values = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(match_roi_columns(values, ["c", "a", "b"], NAMES, "x"), values[:, [1, 2, 0]])
    np.testing.assert_array_equal(
        match_roi_columns(values, ["Parcel_3", "Parcel_1", "Parcel_2"], NAMES, "x"), values[:, [1, 2, 0]]
    )
    with pytest.raises(ValueError, match=r"'x' has duplicate ROI column names \['a'\]"):
        match_roi_columns(values, ["a", "a", "b"], NAMES, "'x'")
    with pytest.raises(ValueError, match=r"2 of them unknown to the atlas \(e.g. \['d', 'e'\]\).*lacks 2"):
        match_roi_columns(values, ["a", "d", "e"], NAMES, "'x'")


def test_sources_are_named_by_path_or_position(tmp_path):
    assert describe_source(tmp_path / "x.nii.gz", 0) == repr(str(tmp_path / "x.nii.gz"))
    assert describe_source(np.zeros((3, 4)), 2) == "input #2 (ndarray of shape (3, 4))"
    path = tmp_path / "v.nii.gz"
    random_volume(2).to_filename(path)
    assert describe_source(nib.load(path), 0) == repr(str(path))


def test_unsupported_inputs_say_what_is_expected(tmp_path):
    with pytest.raises(ValueError, match=r"'.*scan\.mgz' has an unsupported file type; expected a \(T, R\) array"):
        read_recording(tmp_path / "scan.mgz")
    with pytest.raises(TypeError, match=r"input #0 \(dict\) is not a supported input; expected"):
        read_recording({"a": 1})
    dscalar = nib.Cifti2Image(
        np.zeros((1, 3), np.float32), header=(nib.cifti2.ScalarAxis(["map"]), nib.cifti2.ScalarAxis(NAMES))
    )
    with pytest.raises(
        ValueError, match=r"CIFTI-2 file with axes \('ScalarAxis', 'ScalarAxis'\); expected a time series"
    ):
        read_recording(dscalar)
