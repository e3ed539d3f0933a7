"""ParcelAverager: the sparse, NaN-aware parcel mean, against a plain per-parcel loop."""

from __future__ import annotations

import numpy as np
import pytest

from mnemodyn_hf.atlas import ParcelAverager
from mnemodyn_hf.atlas.parcellation import FRAMES_PER_BLOCK


def loop_means(data: np.ndarray, labels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The obvious reference: for each key, nanmean over its columns (NaN where it has no finite value)."""
    out = np.full((data.shape[0], len(keys)), np.nan)
    for column, key in enumerate(keys):
        values = data[:, labels == key].astype(np.float64)
        finite = np.isfinite(values)
        counts = finite.sum(axis=1)
        sums = np.where(finite, values, 0).sum(axis=1)
        out[counts > 0, column] = sums[counts > 0] / counts[counts > 0]
    return out


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    num_frames = 2 * FRAMES_PER_BLOCK + 5  # several blocks and a partial one
    labels = rng.integers(0, 13, 500)  # keys 1..12 plus background 0
    data = (rng.standard_normal((num_frames, 500)) * 3 + 100).astype(np.float32)
    return data, labels, np.arange(1, 13)


def test_means_match_a_per_parcel_loop(problem):
    data, labels, keys = problem
    np.testing.assert_allclose(ParcelAverager(labels, keys)(data), loop_means(data, labels, keys), rtol=0, atol=1e-10)


def test_column_order_follows_keys_and_ignores_other_labels(problem):
    data, labels, keys = problem
    order = keys[::-1][:5]  # a subset, reversed: other labels are background
    np.testing.assert_allclose(ParcelAverager(labels, order)(data), loop_means(data, labels, order), atol=1e-10)


def test_non_finite_values_are_left_out(problem):
    data, labels, keys = problem
    data = data.copy()
    data[3, labels == 4] = np.nan  # parcel 4 entirely missing in frame 3
    data[FRAMES_PER_BLOCK + 1, np.flatnonzero(labels == 5)[:3]] = np.inf  # part of parcel 5 in the second block
    data[:, labels == 6] = np.nan  # parcel 6 missing everywhere
    means = ParcelAverager(labels, keys)(data)
    np.testing.assert_allclose(means, loop_means(data, labels, keys), atol=1e-10)
    assert np.isnan(means[3, 3]) and np.isnan(means[:, 5]).all() and np.isfinite(means[:, [0, 1, 2, 4]]).all()


def test_empty_parcel_is_nan(problem):
    data, labels, _ = problem
    means = ParcelAverager(labels, np.array([1, 99]))(data)
    assert np.isfinite(means[:, 0]).all() and np.isnan(means[:, 1]).all()


def test_wrong_width_is_an_error(problem):
    data, labels, keys = problem
    with pytest.raises(ValueError, match=r"Expected data of shape \(T, 500\), found \(69, 499\)"):
        ParcelAverager(labels, keys)(data[:, :-1])
