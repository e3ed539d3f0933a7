"""What the backbone reads when entries are hidden (`MnemoDynConfig.mask_input`).

* `"token"`: hidden entries hold the mask token (0, the corpus median in robust-scaled units). Inside a hidden
  span the path is flat at 0 with jumps at the span's edges, so the path derivative that drives each layer sees
  changes that never happened, and a hidden 0 looks like a real one.
* `"interpolate"`: the control path is built from the observed values only (as neural CDEs do for irregular
  series): each hidden entry is the straight line between its ROI's nearest visible frames before and after (the
  nearest visible value at a window's edge, e.g. the last observed value under a forecast mask).
* `"interpolate_embedding"`: the same path, plus a learned per-ROI vector added to the hidden entries, so the
  backbone also knows where the observations are missing.

`linear_interpolation_fill` is also the training-free `interpolation` predictor of the reconstruction baselines.
"""

from __future__ import annotations

import torch

from .configuration_mnemodyn import MASK_INPUTS


def linear_interpolation_fill(values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(B, T, R) values and bool visibility -> (B, T, R): hidden entries linearly interpolated in time between the
    ROI's nearest visible frames (the nearest visible value at the window's edges; 0 for a ROI with none)."""
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


def backbone_input(
    corrupted: torch.Tensor, visible: torch.Tensor, mask_input: str, embedding: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, T, R) input with hidden entries at the mask token and its (B, T, R) visibility (1 = shown) -> what the
    backbone reads under `mask_input` (see the module docstring); `embedding` (R,) for `"interpolate_embedding"`."""
    if mask_input == "token":
        return corrupted
    shown = visible.bool()
    path = linear_interpolation_fill(corrupted, shown)
    if mask_input == "interpolate_embedding":
        path = path + (~shown).to(path.dtype) * embedding
    return path


__all__ = ["MASK_INPUTS", "backbone_input", "linear_interpolation_fill"]
