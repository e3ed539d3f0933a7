"""Applying a fixed-length sequence operator to sequences of any length.

The MnemoDyn wavelet operator is built for exactly `context_length` frames (its coarse band has a fixed size
and its region convolutions cut time into fixed blocks). [`apply_in_windows`] makes it length-agnostic:

* a sequence of exactly `window` frames is passed through unchanged (the training length is unaffected);
* a shorter sequence is zero-padded on the right to `window` frames;
* a longer one is cut into windows of `window` frames that overlap by at least `overlap` frames, the last one
  aligned to the sequence end, and the window outputs are blended with a trapezoidal cross-fade (linear ramps
  over `overlap` frames, normalised so the weights of every frame sum to one).

Windows are planned per sample from its own valid length, so the frames of one sample never depend on
another sample's length or on the padding of a batch. Cost and memory are linear in the number of frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def overlapping_window_starts(length: int, window: int, overlap: int) -> list[int]:
    """First frames of the windows covering `length` frames (one window at 0 when `length <= window`)."""
    if length <= window:
        return [0]
    hop = window - overlap
    count = math.ceil((length - window) / hop) + 1
    return [min(index * hop, length - window) for index in range(count)]


def cross_fade_weights(window: int, overlap: int, device=None, dtype=None) -> torch.Tensor:
    """Trapezoidal weights (window,): ramps of `overlap` frames at both ends, 1 in between, never 0."""
    position = torch.arange(window, device=device, dtype=torch.float64) + 0.5
    if overlap == 0:
        return torch.ones(window, device=device, dtype=dtype)
    ramp = torch.minimum(position, window - position) / overlap
    return ramp.clamp(max=1.0).to(dtype)


def apply_in_windows(
    operator: Callable[[torch.Tensor], torch.Tensor],
    signal: torch.Tensor,
    lengths: Sequence[int],
    window: int,
    overlap: int,
    windows_per_chunk: int,
) -> torch.Tensor:
    """Apply `operator`, defined on (N, C, window), to a batch of variable-length sequences.

    Args:
        operator: maps (N, C, window) to (N, C, window).
        signal: (B, C, T); frames at and after `lengths[b]` must already be zero.
        lengths: valid frames of each sample (right padding).
        window: the operator's length.
        overlap: minimum overlap of consecutive windows.
        windows_per_chunk: windows sent to `operator` at once (bounds peak memory).

    Returns:
        (B, C, T); frames at and after a sample's length carry no meaning and should be masked.
    """
    batch, channels, frames = signal.shape
    if frames == window and all(length == window for length in lengths):
        return operator(signal)

    padded_frames = max(frames, window)
    signal = F.pad(signal, (0, padded_frames - frames))
    plan = [
        (sample, start)
        for sample, length in enumerate(lengths)
        for start in overlapping_window_starts(length, window, overlap)
    ]
    taper = cross_fade_weights(window, overlap, device=signal.device, dtype=signal.dtype)
    offsets = torch.arange(window, device=signal.device)

    blended = signal.new_zeros(batch * padded_frames, channels)
    weight = signal.new_zeros(batch * padded_frames)
    for first in range(0, len(plan), windows_per_chunk):
        chunk = plan[first : first + windows_per_chunk]
        segments = torch.stack([signal[sample, :, start : start + window] for sample, start in chunk])
        outputs = operator(segments) * taper  # (n, C, window)
        starts = torch.tensor([sample * padded_frames + start for sample, start in chunk], device=signal.device)
        rows = (starts[:, None] + offsets).reshape(-1)
        blended = blended.index_add(0, rows, outputs.transpose(1, 2).reshape(-1, channels))
        weight = weight.index_add(0, rows, taper.repeat(len(chunk)))
    blended = blended / weight.clamp_min(torch.finfo(weight.dtype).tiny)[:, None]
    return blended.view(batch, padded_frames, channels)[:, :frames].transpose(1, 2)


__all__ = ["apply_in_windows", "cross_fade_weights", "overlapping_window_starts"]
