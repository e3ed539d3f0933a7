"""Filling the non-finite values of a parcellated series (empty parcels, dropped frames), with a warning."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def fill_missing_values(series: np.ndarray, roi_names: Sequence[str], source: str) -> np.ndarray:
    """Fill non-finite values of a (T, R) series: a ROI with none finite gets 0, others their finite-frame mean."""
    missing = ~np.isfinite(series)
    if not missing.any():
        return series
    empty = missing.all(axis=0)
    partial = missing.any(axis=0) & ~empty
    finite_mean = np.where(missing, 0.0, series).sum(axis=0) / np.maximum((~missing).sum(axis=0), 1)
    messages = []
    if empty.any():
        names = [roi_names[i] for i in np.flatnonzero(empty)[:3]]
        messages.append(
            f"{int(empty.sum())} ROIs have no finite value (all-NaN parcel, e.g. {names}) and are filled with 0"
        )
    if partial.any():
        names = [roi_names[i] for i in np.flatnonzero(partial)[:3]]
        messages.append(
            f"{int(partial.sum())} ROIs have missing frames (e.g. {names}), filled with the ROI's mean over its "
            "finite frames"
        )
    warnings.warn(f"{source}: {'; '.join(messages)}.", stacklevel=4)
    return np.where(missing, np.where(empty, 0.0, finite_mean), series)


__all__ = ["fill_missing_values"]
