"""Fixtures of the feature-extraction tests (the real recordings themselves are in tests/conftest.py)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def wb_command() -> str:
    path = shutil.which("wb_command")
    if path is None:
        pytest.skip(
            "wb_command not found on PATH, so the CIFTI parity test against Connectome Workbench cannot run; "
            "install it with `apt-get install connectome-workbench` (scripts/setup_env.sh does so as root)."
        )
    return path
