"""Robust scaling of ROI time series with per-ROI median and IQR, and the streaming sketch that learns them.

The transform (the MnemoDyn reference's `robust_scaler`, fixed): each recording is centred on its own temporal mean,
then shifted by the ROI's median and divided by its interquartile range (IQR), both learned from the centred
training data. The reference took the median of the *raw* values but subtracted it from *centred* ones, leaving a
constant offset of -median/IQR in every ROI; here statistics and transform see the same centred values, so a
typical frame maps near 0. An IQR of 0 (a constant ROI, e.g. one outside the field of view) is replaced by 1, so
such a ROI stays 0 instead of dividing by zero (the reference used 0.1, 1 or 30000 in different scripts).

The statistics are learned in one streaming pass with `RoiQuantileSketch`: no corpus is ever held in memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

#: IQRs at or below this are treated as zero (a constant ROI) and replaced by ZERO_IQR_REPLACEMENT.
ZERO_IQR_TOLERANCE = 1e-8
ZERO_IQR_REPLACEMENT = 1.0


def zscore_frames(series: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(T, R) -> (T, R) float64: each ROI minus its temporal mean, divided by its temporal standard deviation, both
    taken over `reference` frames (default: all of `series`). A constant ROI (standard deviation 0) becomes 0."""
    series = np.asarray(series, dtype=np.float64)
    reference = series if reference is None else np.asarray(reference, dtype=np.float64)
    std = reference.std(axis=0)
    return (series - reference.mean(axis=0)) / np.where(std > 0, std, 1.0)


def centre_frames(series: np.ndarray) -> np.ndarray:
    """(T, R) -> (T, R) series minus each ROI's temporal mean."""
    series = np.asarray(series, dtype=np.float64)
    return series - series.mean(axis=0, keepdims=True)


def guarded_iqr(iqr: np.ndarray) -> np.ndarray:
    """(R,) IQRs with zeros (<= ZERO_IQR_TOLERANCE) replaced by ZERO_IQR_REPLACEMENT."""
    iqr = np.asarray(iqr, dtype=np.float64)
    return np.where(iqr > ZERO_IQR_TOLERANCE, iqr, ZERO_IQR_REPLACEMENT)


def check_statistics(roi_median: list[float] | None, roi_iqr: list[float] | None, num_rois: int) -> None:
    """Raise ValueError unless the statistics are both None or both hold one value per ROI."""
    for name, statistic in (("roi_median", roi_median), ("roi_iqr", roi_iqr)):
        if statistic is not None and len(statistic) != num_rois:
            raise ValueError(f"{name} has {len(statistic)} values; expected one per ROI ({num_rois}).")
    if (roi_median is None) != (roi_iqr is None):
        raise ValueError("roi_median and roi_iqr must be given together (both come from fit).")


def warn_constant_rois(iqr: np.ndarray, roi_names: Sequence[str]) -> np.ndarray:
    """Warn about the ROIs whose corpus IQR is zero (constant ROIs, scaled with an IQR of 1); return `iqr`."""
    constant = [name for name, value in zip(roi_names, iqr, strict=True) if value <= ZERO_IQR_TOLERANCE]
    if constant:
        warnings.warn(
            f"{len(constant)} ROIs are constant over the corpus (zero IQR), e.g. {constant[:3]}; they will be "
            "scaled with an IQR of 1 (and so stay at 0 after centring).",
            stacklevel=3,
        )
    return iqr


def robust_scale(series: np.ndarray, median: np.ndarray, iqr: np.ndarray) -> np.ndarray:
    """(T, R) series -> (T, R) (centred series - median) / IQR, with the zero-IQR guard.

    Args:
        series: (T, R) ROI time series of one recording.
        median: (R,) median of the centred training series.
        iqr: (R,) interquartile range (P75 - P25) of the centred training series.
    """
    return (centre_frames(series) - np.asarray(median, dtype=np.float64)) / guarded_iqr(iqr)


class RoiQuantileSketch:
    """Per-ROI quantiles of a stream of (T, R) frames, in bounded memory and with a bounded relative error.

    A mergeable log-bucket histogram (the DDSketch scheme): a value x with MIN_MAGNITUDE <= |x| is counted in bucket
    ceil(log_gamma(|x| / MIN_MAGNITUDE)) of its sign, with gamma = (1 + a) / (1 - a); |x| < MIN_MAGNITUDE counts as
    0 and |x| above MAX_MAGNITUDE in the last bucket. `quantile(q)` returns numpy's linear-interpolation quantile of
    all values seen, each order statistic replaced by its bucket's representative: within a relative error `a`
    (`relative_accuracy`, 0.5 % by default) of the exact value for magnitudes in [MIN_MAGNITUDE, MAX_MAGNITUDE].
    Non-finite values are skipped. Memory: R x (2 * buckets + 1) counts (26 MB for 450 ROIs at 0.5 %).

    Sketches with the same settings `merge` by adding counts, so a corpus can be sketched in parallel shards.
    """

    MIN_MAGNITUDE = 1e-8
    MAX_MAGNITUDE = 1e8

    def __init__(self, num_rois: int, relative_accuracy: float = 0.005):
        if not 0 < relative_accuracy < 1:
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy}.")
        self.num_rois = num_rois
        self.relative_accuracy = relative_accuracy
        self.log_gamma = np.log((1 + relative_accuracy) / (1 - relative_accuracy))
        self.num_buckets = int(np.ceil(np.log(self.MAX_MAGNITUDE / self.MIN_MAGNITUDE) / self.log_gamma)) + 1
        # positions: negative buckets (largest magnitude first), the zero bucket, positive buckets
        self.counts = np.zeros((num_rois, 2 * self.num_buckets + 1), np.int64)

    @property
    def count(self) -> np.ndarray:
        """(R,) number of finite values seen per ROI."""
        return self.counts.sum(axis=1)

    def update(self, series: np.ndarray) -> None:
        """Count the (T, R) values of one recording."""
        series = np.asarray(series, dtype=np.float64)
        if series.ndim != 2 or series.shape[1] != self.num_rois:
            raise ValueError(f"Expected a (T, {self.num_rois}) series, found shape {series.shape}.")
        finite = np.isfinite(series)
        values = series[finite]
        rois = np.nonzero(finite)[1]
        magnitude = np.abs(values)
        with np.errstate(divide="ignore"):
            bucket = np.ceil(np.log(magnitude / self.MIN_MAGNITUDE) / self.log_gamma)
        bucket = np.clip(np.nan_to_num(bucket, neginf=0), 0, self.num_buckets - 1).astype(np.int64)
        zero = magnitude < self.MIN_MAGNITUDE
        position = np.where(values > 0, self.num_buckets + 1 + bucket, self.num_buckets - 1 - bucket)
        position[zero] = self.num_buckets
        width = self.counts.shape[1]
        self.counts += np.bincount(rois * width + position, minlength=self.counts.size).reshape(self.counts.shape)

    def merge(self, other: RoiQuantileSketch) -> None:
        """Add the counts of a sketch with the same settings."""
        if other.counts.shape != self.counts.shape or other.relative_accuracy != self.relative_accuracy:
            raise ValueError("Only sketches with the same number of ROIs and relative accuracy can be merged.")
        self.counts += other.counts

    def quantile(self, q: float) -> np.ndarray:
        """(R,) q-quantiles (numpy's linear interpolation); NaN for a ROI that saw no finite value."""
        count = self.count
        rank = q * (count - 1)
        lower, upper = np.floor(rank), np.ceil(rank)
        cumulative = np.cumsum(self.counts, axis=1)
        values = [self._value(np.argmax(cumulative > order[:, None], axis=1)) for order in (lower, upper)]
        result = values[0] + (rank - lower) * (values[1] - values[0])
        return np.where(count > 0, result, np.nan)

    def _value(self, position: np.ndarray) -> np.ndarray:
        """Representative value of each bucket position: +-MIN_MAGNITUDE * 2 gamma^i / (gamma + 1) for bucket i."""
        bucket = np.abs(position - self.num_buckets) - 1
        magnitude = self.MIN_MAGNITUDE * 2 * np.exp(bucket * self.log_gamma) / (np.exp(self.log_gamma) + 1)
        return np.where(position == self.num_buckets, 0.0, np.sign(position - self.num_buckets) * magnitude)
