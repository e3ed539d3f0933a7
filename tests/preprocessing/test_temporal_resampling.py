"""Band-limited resampling between TRs: frame counts, accuracy, anti-aliasing, edges."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from mnemodyn_hf.preprocessing.temporal_resampling import HALF_WIDTH, resample_frames, resampled_length


def sampled(frequencies: list[float], num_frames: int, tr: float) -> np.ndarray:
    """(T, len(frequencies)) sinusoids (phase 0.3 rad) sampled every `tr` seconds."""
    times = np.arange(num_frames)[:, None] * tr
    return np.sin(2 * np.pi * np.asarray(frequencies)[None, :] * times + 0.3)


@pytest.mark.parametrize(
    "num_frames, source_tr, target_tr, expected",
    [
        (100, 2.0, 0.735, 270),
        (1200, 0.72, 0.735, 1175),
        (490, 0.735, 0.735, 490),
        (1, 2.0, 0.735, 1),
        (10, 0.5, 1.0, 5),
    ],
)
def test_length_spans_the_input_without_extrapolation(num_frames, source_tr, target_tr, expected):
    # expected = floor((T - 1) * source_tr / target_tr) + 1, worked out by hand
    assert resampled_length(num_frames, source_tr, target_tr) == expected
    assert resample_frames(np.zeros((num_frames, 3)), source_tr, target_tr).shape == (expected, 3)


@pytest.mark.parametrize("source_tr, target_tr", [(2.0, 0.735), (0.72, 0.735), (0.5, 0.735), (1.4, 0.735)])
def test_band_limited_signals_are_reproduced_at_the_new_times(source_tr, target_tr):
    x = sampled([0.02, 0.05, 0.1], 300, source_tr)
    y = resample_frames(x, source_tr, target_tr)
    expected = sampled([0.02, 0.05, 0.1], len(y), target_tr)
    times = np.arange(len(y)) * target_tr
    margin = HALF_WIDTH * max(source_tr, target_tr)
    interior = (times > margin) & (times < times[-1] - margin)
    assert np.abs(y - expected)[interior].max() < 5e-3
    assert np.abs(y - expected).max() < 0.25  # edges: a truncated, renormalised kernel


def test_downsampling_is_anti_aliased():
    # 0.9 Hz is below the source Nyquist (1 Hz at TR 0.5 s) and above the target's (0.68 Hz at TR 0.735 s)
    x = sampled([0.9], 400, 0.5)
    y = resample_frames(x, 0.5, 0.735)
    linear = np.interp(np.arange(len(y)) * 0.735, np.arange(400) * 0.5, x[:, 0])
    assert np.abs(y[20:-20]).max() < 0.02  # removed
    assert np.abs(linear[20:-20]).max() > 0.5  # what naive interpolation would alias into the band


def test_constants_stay_constant_up_to_the_edges():
    x = np.full((60, 2), [1e4, -3.0])
    np.testing.assert_allclose(
        resample_frames(x, 2.0, 0.735), np.full((resampled_length(60, 2.0, 0.735), 2), [1e4, -3.0])
    )


def test_agrees_with_polyphase_resampling_for_a_rational_ratio():
    # TR 0.72 -> 0.735 is 48/49: the same filter as scipy.signal.resample_poly, whose edges droop to 0
    rng = np.random.default_rng(0)
    b, a = scipy.signal.butter(4, 0.3)
    x = scipy.signal.filtfilt(b, a, rng.standard_normal((300, 2)), axis=0)
    ours = resample_frames(x, 0.72, 0.735)
    poly = scipy.signal.resample_poly(x, 48, 49, axis=0)[: len(ours)]
    assert np.abs(ours - poly)[20:-20].max() < 2e-3 * np.abs(x).max()


def test_equal_trs_are_the_identity_and_bad_trs_are_errors():
    x = np.random.default_rng(1).standard_normal((20, 4))
    np.testing.assert_array_equal(resample_frames(x, 0.735, 0.735), x)
    with pytest.raises(ValueError, match="must be positive"):
        resample_frames(x, 0.0, 0.735)
