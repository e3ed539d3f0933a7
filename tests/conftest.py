"""Shared test helpers and session fixtures (real fMRI built once from offline PyPI data carriers)."""

import time
from pathlib import Path

import pytest

from mnemodyn_hf import MnemoDynConfig, native_kernels
from mnemodyn_hf.data.sample_recordings import make_fmriprep_derivatives, make_real_dtseries, make_real_volume

#: Frames of the real test recordings (TR 1.4 s): enough for stable parcel correlations, small to build.
REAL_FRAMES = 40

FIXTURES = Path(__file__).parent / "fixtures"
#: Largest |difference| allowed between a converted model's float32 output and the reference fixture's. The
#: fixtures carry float32 rounding of their own (our float64 run differs from them by up to 1.3e-4) and the stacked
#: layers amplify kernel-dependent rounding: 2.0e-5 was measured on one CPU, 2.2e-4 on an AVX-512 one. A wrong
#: conversion is off by O(1).
PARITY_TOLERANCE = 5e-4
REFERENCE_PARITY = FIXTURES / "reference_parity"


def tiny_config(**overrides) -> MnemoDynConfig:
    """A small MnemoDyn configuration for fast tests (12 ROIs, 2 layers, 64-frame context)."""
    values = dict(
        num_rois=12,
        num_layers=2,
        projection_size=8,
        bottleneck_size=3,
        latent_channels=6,
        wavelet_levels=3,
        num_regions=4,
        operator_kernel_size=5,
        num_coarse_layers=2,
        context_length=64,
        repetition_time=0.72,
    )
    values.update(overrides)
    return MnemoDynConfig(**values)


@pytest.fixture
def config() -> MnemoDynConfig:
    return tiny_config()


def slowed(function):
    """`function` behind 100 ms of sleep per call: a contender for a timed choice that must never win."""

    def slow(*args, **kwargs):
        time.sleep(0.1)
        return function(*args, **kwargs)

    return slow


@pytest.fixture
def kernel_choice_file(monkeypatch, tmp_path) -> Path:
    """The loaded kernel library, its timed choices kept in a file under tmp_path (returned) instead of the cache."""
    status = native_kernels.kernel_status()
    monkeypatch.setattr(
        native_kernels,
        "kernel_status",
        lambda: native_kernels.KernelStatus(status.library, status.reason, tmp_path / "k.so"),
    )
    return tmp_path / "k.choices.json"


@pytest.fixture(scope="session")
def brainspace_dtseries(tmp_path_factory) -> Path:
    """brainspace's real rest run on the 91,282 grayordinates, 40 frames at TR 1.4 s (cortex real, subcortex 0)."""
    return make_real_dtseries(tmp_path_factory.mktemp("real") / "sub-010188_rest.dtseries.nii", REAL_FRAMES)


@pytest.fixture(scope="session")
def real_dtseries(brainspace_dtseries) -> Path:
    """The real run of `brainspace_dtseries` (a test module may replace this fixture with a run of its own)."""
    return brainspace_dtseries


@pytest.fixture(scope="session")
def real_volume(real_dtseries, tmp_path_factory) -> Path:
    """The same run as a 4-D NIfTI on the atlas's MNI152NLin6Asym 2 mm grid (cortical ribbon real, rest 0)."""
    return make_real_volume(real_dtseries, tmp_path_factory.mktemp("real") / "sub-010188_rest_MNI2mm.nii")


@pytest.fixture(scope="session")
def fmriprep_derivatives(brainspace_dtseries, tmp_path_factory) -> Path:
    """An fMRIPrep derivatives folder (`make_fmriprep_derivatives`): sub-01 and sub-02, 30 real frames each at TR
    1.4 s as CIFTI (space-fsLR) and NIfTI (space-MNI152NLin6Asym), beside the real fMRIPrep confounds files nilearn
    ships (fMRIPrep >= 20.2 and 1.4 naming)."""
    return make_fmriprep_derivatives(tmp_path_factory.mktemp("fmriprep"), brainspace_dtseries)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared development data folder (holding `abide_dev/`, `rpn_signature/`), or skip.

    `$MNEMODYN_SHARED_DATA` when set, else `../shared/data` beside the repository (never copied into it).
    """
    import os

    root = os.environ.get("MNEMODYN_SHARED_DATA")
    folder = Path(root) if root else Path(__file__).resolve().parents[2] / "shared" / "data"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}: set MNEMODYN_SHARED_DATA=/path/to/shared/data")
    return folder
