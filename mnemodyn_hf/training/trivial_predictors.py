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


def roi_mean_fill(values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(B, T, R) values and bool visibility -> (B, T, R): hidden entries replaced by their ROI's visible mean."""
    weights = visible.to(values.dtype)
    mean = (values * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1)
    return torch.where(visible, values, mean.expand_as(values))


def linear_interpolation_fill(values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(B, T, R) values and bool visibility -> (B, T, R): hidden entries linearly interpolated in time."""
    frames = values.shape[1]
    time = torch.arange(frames, device=values.device).view(1, frames, 1).expand_as(values)
    previous = torch.where(visible, time, torch.full_like(time, -1)).cummax(dim=1).values
    following = torch.where(visible, time, torch.full_like(time, frames)).flip(1).cummin(dim=1).values.flip(1)
    has_previous, has_following = previous >= 0, following < frames
    before = values.gather(1, previous.clamp(0, frames - 1))
    after = values.gather(1, following.clamp(0, frames - 1))
    span = (following - previous).clamp_min(1).to(values.dtype)
    between = before + (after - before) * (time - previous).to(values.dtype) / span
    filled = torch.where(has_previous & has_following, between, torch.where(has_previous, before, after))
    filled = torch.where(has_previous | has_following, filled, torch.zeros_like(values))
    return torch.where(visible, values, filled)


__all__ = ["linear_interpolation_fill", "roi_mean_fill"]
