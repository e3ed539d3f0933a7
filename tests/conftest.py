"""Shared test helpers."""

from pathlib import Path

import pytest

from mnemodyn_hf import MnemoDynConfig

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE_PARITY = FIXTURES / "reference_parity"


def tiny_config(**overrides) -> MnemoDynConfig:
    """A small MnemoDyn configuration for fast tests (12 ROIs, 2 layers, 64-frame context)."""
    values = dict(
        num_rois=12, num_layers=2, projection_size=8, bottleneck_size=3, latent_channels=6, wavelet_levels=3,
        num_regions=4, operator_kernel_size=5, num_coarse_layers=2, context_length=64, repetition_time=0.72,
    )  # fmt: skip
    values.update(overrides)
    return MnemoDynConfig(**values)


@pytest.fixture
def config() -> MnemoDynConfig:
    return tiny_config()
