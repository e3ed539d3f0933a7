"""Robust scaling: the transform, the zero-IQR guard, and the streaming quantile sketch's accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from mnemodyn_hf.preprocessing.robust_scaling import RoiQuantileSketch, centre_frames, guarded_iqr, robust_scale


def corpus(num_recordings: int = 12, num_rois: int = 30, seed: int = 0) -> list[np.ndarray]:
    """Recordings with ROI-specific scales (0.01 to 1000) and offsets, skewed values, and a constant ROI."""
    rng = np.random.default_rng(seed)
    scales, offsets = 10 ** rng.uniform(-2, 3, num_rois), rng.uniform(-50, 50, num_rois)
    recordings = [
        rng.gamma(2.0, 1.0, (rng.integers(50, 200), num_rois)) * scales + offsets for _ in range(num_recordings)
    ]
    for x in recordings:
        x[:, 0] = 7.0
    return recordings


def test_sketch_quantiles_are_within_the_relative_accuracy():
    recordings = [centre_frames(x) for x in corpus()]
    sketch = RoiQuantileSketch(30)
    for x in recordings:
        sketch.update(x)
    pooled = np.concatenate(recordings)
    for q in (0.25, 0.5, 0.75):
        exact = np.quantile(pooled, q, axis=0)
        estimate = sketch.quantile(q)
        assert np.all(np.abs(estimate - exact) <= 0.005 * np.abs(exact) + 1e-12), q
    assert sketch.quantile(0.5)[0] == 0.0  # the constant ROI, centred


def test_sketches_merge_and_skip_non_finite_values():
    recordings = corpus()
    whole, first, second = RoiQuantileSketch(30), RoiQuantileSketch(30), RoiQuantileSketch(30)
    for index, x in enumerate(recordings):
        whole.update(x)
        (first if index % 2 else second).update(x)
    first.merge(second)
    np.testing.assert_array_equal(first.counts, whole.counts)
    with_nan = recordings[0].copy()
    with_nan[::2, 3] = np.nan
    sketch = RoiQuantileSketch(30)
    sketch.update(with_nan)
    assert sketch.count[3] == np.isfinite(with_nan[:, 3]).sum() and sketch.count[4] == len(with_nan)
    with pytest.raises(ValueError, match="same number of ROIs"):
        first.merge(RoiQuantileSketch(31))


def test_robust_scale_centres_then_scales_by_median_and_iqr():
    x = corpus(1)[0]
    median, iqr = np.linspace(-1, 1, 30), np.linspace(0.5, 2, 30)
    expected = (x - x.mean(axis=0) - median) / iqr
    np.testing.assert_allclose(robust_scale(x, median, iqr), expected)


def test_zero_iqr_is_replaced_by_one():
    assert guarded_iqr(np.array([0.0, 1e-12, 2.5])).tolist() == [1.0, 1.0, 2.5]
    x = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    scaled = robust_scale(x, np.zeros(2), np.array([0.0, 2.0]))
    assert np.all(scaled[:, 0] == 0) and np.all(np.isfinite(scaled))
