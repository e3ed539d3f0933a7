"""Trivial predictors of hidden entries, the bars a masked model must clear.

Both fill the hidden entries of each ROI from that ROI's visible frames in the same window only:

* `roi_mean_fill`: the mean of the ROI's visible frames;
* `linear_interpolation_fill`: the straight line between the nearest visible frames before and after each hidden
  frame (the nearest visible value at the window's edges).

A ROI with no visible frame is filled with 0 (the corpus median in normalised units).

Baselines fitted on training subjects (cross-ROI Gaussian conditional mean, spatio-temporal ridge) are in
`mnemodyn_hf.evaluation.spatial_predictors` and `mnemodyn_hf.evaluation.spatiotemporal_ridge`.
"""

from __future__ import annotations

import torch

from ..masked_inputs import linear_interpolation_fill


def roi_mean_fill(values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(B, T, R) values and bool visibility -> (B, T, R): hidden entries replaced by their ROI's visible mean."""
    weights = visible.to(values.dtype)
    mean = (values * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1)
    return torch.where(visible, values, mean.expand_as(values))


__all__ = ["linear_interpolation_fill", "roi_mean_fill"]
