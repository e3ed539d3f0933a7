"""Resampling ROI time series from one repetition time (TR) to another: band-limited, anti-aliased.

Method: windowed-sinc interpolation evaluated at the exact new frame times, so any ratio of TRs works (no rational
approximation). The kernel is `sinc(tau / P) * kaiser(tau / (HALF_WIDTH * P), KAISER_BETA)`, with P the coarser of
the two TRs: its cutoff is the lower of the two Nyquist frequencies, which makes downsampling anti-aliased and
upsampling free of images. These are the filter settings of `scipy.signal.resample_poly` (10 coarse periods on each
side, Kaiser beta 5), generalised to a real-valued ratio. The weights of each new frame are normalised to sum to one,
so constant signals stay constant up to the edges (resample_poly's zero padding makes the edges droop towards 0).

New frames are at 0, TR', 2 TR', ... up to the time of the last input frame: `resampled_length` frames, no
extrapolation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

#: Half-width of the interpolation kernel, in periods of the coarser TR.
HALF_WIDTH = 10
#: Shape parameter of the Kaiser window of the kernel.
KAISER_BETA = 5.0


def resampled_length(num_frames: int, source_tr: float, target_tr: float) -> int:
    """Number of frames at `target_tr` spanning `num_frames` frames at `source_tr` (0, TR', ... <= (T-1) TR)."""
    span = (num_frames - 1) * source_tr
    return int(np.floor(span / target_tr * (1 + 1e-9))) + 1


def resample_frames(series: np.ndarray, source_tr: float, target_tr: float) -> np.ndarray:
    """Resample (T, R) frames taken every `source_tr` seconds to frames every `target_tr` seconds.

    Returns:
        (T', R) float64, T' = `resampled_length(T, source_tr, target_tr)`; frame k is at time k * target_tr.
    """
    if not (source_tr > 0 and target_tr > 0):
        raise ValueError(f"Repetition times must be positive, got source {source_tr} s and target {target_tr} s.")
    if np.isclose(source_tr, target_tr, rtol=1e-6, atol=0):
        return np.asarray(series, dtype=np.float64)
    return resampling_matrix(len(series), source_tr, target_tr) @ np.asarray(series, dtype=np.float64)


def resampling_matrix(num_frames: int, source_tr: float, target_tr: float) -> scipy.sparse.csr_matrix:
    """The (T', T) sparse linear map of `resample_frames`: row k holds the weights of new frame k."""
    period = max(source_tr, target_tr)
    reach = HALF_WIDTH * period
    times = np.arange(resampled_length(num_frames, source_tr, target_tr)) * target_tr
    first = np.ceil((times - reach) / source_tr).astype(np.int64)
    offsets = np.arange(int(np.ceil(2 * reach / source_tr)) + 1)
    frames = first[:, None] + offsets[None, :]  # (T', W) candidate input frames of each new frame
    lag = (times[:, None] - frames * source_tr) / reach
    valid = (frames >= 0) & (frames < num_frames) & (np.abs(lag) <= 1)
    window = np.i0(KAISER_BETA * np.sqrt(np.clip(1 - lag**2, 0, None))) / np.i0(KAISER_BETA)
    weights = np.where(valid, np.sinc(lag * HALF_WIDTH) * window, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    return scipy.sparse.csr_matrix(
        (weights[valid], (np.nonzero(valid)[0], frames[valid])), shape=(len(times), num_frames)
    )
