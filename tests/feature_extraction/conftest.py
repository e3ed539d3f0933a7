"""Real fMRI inputs for the feature-extraction tests, built once per session from offline PyPI data carriers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mnemodyn_hf.testing import make_real_dtseries, make_real_volume

#: Frames of the real test recordings (TR 1.4 s): enough for stable parcel correlations, small to build.
REAL_FRAMES = 40


@pytest.fixture(scope="session")
def real_dtseries(tmp_path_factory) -> Path:
    """brainspace's real rest run on the 91,282 grayordinates, 40 frames at TR 1.4 s (cortex real, subcortex 0)."""
    return make_real_dtseries(tmp_path_factory.mktemp("real") / "sub-010188_rest.dtseries.nii", REAL_FRAMES)


@pytest.fixture(scope="session")
def real_volume(real_dtseries, tmp_path_factory) -> Path:
    """The same run as a 4-D NIfTI on the atlas's MNI152NLin6Asym 2 mm grid (cortical ribbon real, rest 0)."""
    return make_real_volume(real_dtseries, tmp_path_factory.mktemp("real") / "sub-010188_rest_MNI2mm.nii")


@pytest.fixture(scope="session")
def wb_command() -> str:
    path = shutil.which("wb_command")
    if path is None:
        pytest.skip(
            "wb_command not found on PATH, so the CIFTI parity test against Connectome Workbench cannot run; "
            "install it with `apt-get install connectome-workbench` (scripts/setup_env.sh does so as root)."
        )
    return path
