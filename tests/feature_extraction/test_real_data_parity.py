"""Parity on real resting-state fMRI: the CIFTI path vs wb_command, the NIfTI path vs nilearn, and CIFTI vs NIfTI."""

from __future__ import annotations

import subprocess
import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn.maskers import NiftiLabelsMasker

from mnemodyn_hf import MnemoDynFeatureExtractor
from mnemodyn_hf.atlas import DEFAULT_ATLAS_FILES
from tests.conftest import REAL_FRAMES


@pytest.fixture(scope="module")
def raw():
    return MnemoDynFeatureExtractor(do_resample=False, do_normalize=False)


@pytest.fixture(scope="module")
def cifti_features(raw, real_dtseries):
    return raw(real_dtseries)["input_values"][0]


@pytest.fixture(scope="module")
def nifti_features(raw, real_volume):
    return raw(real_volume)["input_values"][0]


def test_cifti_path_matches_wb_command(cifti_features, real_dtseries, wb_command, tmp_path):
    ptseries = tmp_path / "wb.ptseries.nii"
    dlabel = str(DEFAULT_ATLAS_FILES["cifti"])
    subprocess.run([wb_command, "-cifti-parcellate", str(real_dtseries), dlabel, "COLUMN", str(ptseries)], check=True)
    reference = nib.load(ptseries)
    assert list(reference.header.get_axis(1).name) == list(MnemoDynFeatureExtractor().roi_names)
    reference = np.asanyarray(reference.dataobj)
    assert cifti_features.shape == reference.shape == (REAL_FRAMES, 450)
    assert np.abs(reference[:, 50:]).max() > 0.1  # real cortical signal (the subcortex of this run is 0)
    assert np.abs(cifti_features - reference).max() <= 1e-5


def test_nifti_path_matches_nilearn(nifti_features, real_volume):
    masker = NiftiLabelsMasker(str(DEFAULT_ATLAS_FILES["volume"]), strategy="mean", standardize=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's notices about its own defaults
        reference = masker.fit_transform(str(real_volume))
    assert nifti_features.shape == reference.shape == (REAL_FRAMES, 450)
    assert np.abs(reference[:, 50:]).max() > 0.1
    assert np.abs(nifti_features - reference).max() <= 1e-5


def test_nifti_and_cifti_paths_agree_on_the_cortex(nifti_features, cifti_features):
    correlations = [np.corrcoef(nifti_features[:, i], cifti_features[:, i])[0, 1] for i in range(50, 450)]
    assert np.median(correlations) >= 0.95
    shuffled = [
        np.corrcoef(nifti_features[:, i], cifti_features[:, 50 + (i - 50 + 7) % 400])[0, 1] for i in range(50, 450)
    ]
    assert np.median(shuffled) < 0.9  # the agreement is parcel-specific, not a shared global signal
