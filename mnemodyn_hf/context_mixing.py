"""`MnemoDynContextMixer`: a second-order context branch for MnemoDyn layers (not in the reference; issue 14's
reconstruction-ceiling lead, docs/representations.md).

A layer's vector field reads one frame at a time and its wavelet operator filters each latent channel in time, so
nothing in a MnemoDyn layer forms a statistic of the *window's* connectivity and applies it back to a frame. Masked
reconstruction rewards exactly that (each subject's own covariance fills hidden ROIs far better than the group's).
The mixer adds it at linear cost in the number of frames, without attention weights over frame pairs:

    p_t = P x_t                                  (k learned components of the frame, P: (k, R))
    M   = sum_t m_t p_t p_t^T / sum_t m_t         (the sequence's second moments of the components, (k, k))
    out_t = Q M p_t                               (back to ROIs, Q: (R, k), initialised small)

m_t is 1 for real frames and 0 for padding, so padding never changes real frames' outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration_mnemodyn import MnemoDynConfig


class MnemoDynContextMixer(nn.Module):
    """(B, T, R) frames -> (B, T, R) update `Q M p_t` (see the module docstring); `config.context_components` = k."""

    def __init__(self, config: MnemoDynConfig):
        super().__init__()
        self.components = nn.Linear(config.num_rois, config.context_components, bias=False)
        self.output_projection = nn.Linear(config.context_components, config.num_rois, bias=False)
        self.output_projection.init_std = config.initializer_range  # the branch starts near zero

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        components = self.components(frames)  # (B, T, k)
        weights = torch.ones_like(components[..., :1]) if frame_mask is None else frame_mask[..., None].to(frames)
        moments = (components * weights).mT @ components / weights.sum(1, keepdim=True).clamp_min(1)  # (B, k, k)
        return self.output_projection(components @ moments)


__all__ = ["MnemoDynContextMixer"]
