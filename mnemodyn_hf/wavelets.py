"""Single-level discrete wavelet transforms in plain torch, matching PyWavelets' periodization mode.

Convention (identical to ``pywt.dwt(x, wavelet, mode="periodization")`` and ``pywt.idwt``):

* analysis of a length-N signal gives approximation and detail bands of length ``ceil(N / 2)``; an odd signal
  is first extended by repeating its last sample, then treated as periodic;
* synthesis of two length-n bands gives 2n samples (for an odd original, the extra last sample is the
  repeated one).

Both transforms act on the last axis of any tensor and apply the same filters to every leading index
(a depthwise transform). Filters come from PyWavelets, so every discrete wavelet it knows is available.
"""

from __future__ import annotations

import functools

import numpy as np
import pywt
import torch


@functools.cache
def _filters(wavelet: str) -> tuple[np.ndarray, np.ndarray]:
    w = pywt.Wavelet(wavelet)
    analysis = np.stack([w.dec_lo[::-1], w.dec_hi[::-1]])[:, None, :]  # (2, 1, F), flipped for conv1d
    synthesis = np.stack([w.rec_lo[::-1], w.rec_hi[::-1]])[None, :, :]  # (1, 2, F)
    return analysis, synthesis


def analysis_filter_bank(wavelet: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Low- and high-pass decomposition filters of `wavelet`, reversed for `conv1d`: shape (2, 1, F)."""
    return torch.tensor(_filters(wavelet)[0].copy(), dtype=dtype)


def synthesis_filter_bank(wavelet: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Low- and high-pass reconstruction filters of `wavelet`, reversed for `conv1d`: shape (1, 2, F)."""
    return torch.tensor(_filters(wavelet)[1].copy(), dtype=dtype)


def _periodic_index(length: int, period: int, shift: int, device: torch.device) -> torch.Tensor:
    return torch.remainder(torch.arange(length, device=device) + shift, period)


def dwt(signal: torch.Tensor, analysis_filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One level of the periodized DWT.

    Args:
        signal: (..., N) real tensor, N >= 1.
        analysis_filters: (2, 1, F) from [`analysis_filter_bank`].

    Returns:
        `(approximation, detail)`, each (..., ceil(N / 2)).
    """
    if signal.shape[-1] % 2:
        signal = torch.cat([signal, signal[..., -1:]], dim=-1)
    even_length, taps = signal.shape[-1], analysis_filters.shape[-1]
    filters = analysis_filters[:, 0].to(signal.dtype)  # (2, F): the stride-2 correlation's taps
    index = _periodic_index(even_length + taps - 2, even_length, 1 - taps // 2, signal.device)
    extended = signal[..., index]
    half = even_length // 2
    # band[j] = sum_t filter[t] * extended[2 j + t]: F strided views and multiply-adds per band, no convolution
    # (a 1-channel strided conv1d is slow on CPU)
    bands = []
    for band in (0, 1):
        out = extended[..., 0 : 2 * half : 2] * filters[band, 0]
        for t in range(1, taps):
            out = out.addcmul(extended[..., t : t + 2 * half : 2], filters[band, t])
        bands.append(out)
    return bands[0], bands[1]


def idwt(approximation: torch.Tensor, detail: torch.Tensor, synthesis_filters: torch.Tensor) -> torch.Tensor:
    """One level of the periodized inverse DWT.

    Args:
        approximation: (..., n) low-pass band.
        detail: (..., n) high-pass band, same shape.
        synthesis_filters: (1, 2, F) from [`synthesis_filter_bank`].

    Returns:
        (..., 2n) reconstruction.
    """
    if approximation.shape != detail.shape:
        raise ValueError(
            f"idwt needs bands of equal shape, got {tuple(approximation.shape)} and {tuple(detail.shape)}."
        )
    half, taps = approximation.shape[-1], synthesis_filters.shape[-1]
    filters = synthesis_filters[0].to(approximation.dtype)  # (2, F): conv1d weights on the zero-upsampled bands
    # Polyphase form of that convolution: output 2i + q only meets taps t of parity (F // 2 - q) % 2, which read
    # band sample i + (q + t - F // 2) / 2 (periodically): a few shifted multiply-adds, no zeros, no convolution
    # (a 1-channel conv1d is slow on CPU, forward and backward).
    shifts = [(q, t, (q + t - taps // 2) // 2) for q in (0, 1) for t in range(taps) if (q + t - taps // 2) % 2 == 0]
    low, high = min(s for *_, s in shifts), max(s for *_, s in shifts)
    index = _periodic_index(half + high - low, half, low, approximation.device)
    extended = [approximation[..., index], detail[..., index]]
    phases = [None, None]
    for q, t, shift in shifts:
        for band in (0, 1):
            term = extended[band][..., shift - low : shift - low + half]
            phases[q] = term * filters[band, t] if phases[q] is None else phases[q].addcmul(term, filters[band, t])
    return torch.stack(phases, dim=-1).flatten(-2)


__all__ = ["analysis_filter_bank", "dwt", "idwt", "synthesis_filter_bank"]
