"""Single-level discrete wavelet transforms in plain torch, matching PyWavelets' periodization mode.

Convention (identical to ``pywt.dwt(x, wavelet, mode="periodization")`` and ``pywt.idwt``):

* analysis of a length-N signal gives approximation and detail bands of length ``ceil(N / 2)``; an odd signal
  is first extended by repeating its last sample, then treated as periodic;
* synthesis of two length-n bands gives 2n samples (for an odd original, the extra last sample is the
  repeated one).

Both transforms act on the last axis of any tensor and apply the same filters to every leading index
(a depthwise transform). Filters come from PyWavelets, so every discrete wavelet it knows is available.

Float32 tensors on the CPU go through the native kernels of `kernels/wavelet_transforms.c` (`native_kernels`), which
deinterleave each row once and run every filter tap as one contiguous multiply-add; everything else, and every
machine without the kernels, runs the strided tensor operations below (the two agree to float32 rounding, tested).
"""

from __future__ import annotations

import functools

import numpy as np
import pywt
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .native_kernels import kernel_status


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


def _periodic_extension(signal: torch.Tensor, before: int, after: int) -> torch.Tensor:
    """`signal` (..., n) extended periodically by `before` samples on the left and `after` on the right."""
    length = signal.shape[-1]
    left_copies, right_copies = -(-before // length), -(-after // length)
    tiled = torch.cat([signal] * (left_copies + 1 + right_copies), dim=-1) if left_copies + right_copies else signal
    start = left_copies * length - before
    return tiled[..., start : start + before + length + after]


def _periodic_fold(extended: torch.Tensor, length: int, before: int) -> torch.Tensor:
    """The adjoint of `_periodic_extension(., before, after)`: every sample of `extended` added back onto the one of
    the length-`length` period it copies."""
    start = -(-before // length) * length - before
    copies = -(-(start + extended.shape[-1]) // length)
    padded = F.pad(extended, (start, copies * length - start - extended.shape[-1]))
    return padded.unflatten(-1, (copies, length)).sum(-2)


def _analysis(signal: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both bands of an even-length signal: band[j] = sum_t filters[band, t] * extended[2 j + t], F strided views
    and multiply-adds per band (a 1-channel strided conv1d is slow on CPU)."""
    taps, half = filters.shape[-1], signal.shape[-1] // 2
    extended = _periodic_extension(signal, taps // 2 - 1, taps - 1 - taps // 2)
    bands = []
    for band in (0, 1):
        out = extended[..., 0 : 2 * half : 2] * filters[band, 0]
        for t in range(1, taps):
            out.addcmul_(extended[..., t : t + 2 * half : 2], filters[band, t])
        bands.append(out)
    return bands[0], bands[1]


def _analysis_adjoint(grads: tuple[torch.Tensor, torch.Tensor], filters: torch.Tensor, length: int) -> torch.Tensor:
    """The transpose of `_analysis` after the odd-length extension: the gradient of a length-`length` signal."""
    taps, even = filters.shape[-1], length + length % 2
    extended = grads[0].new_zeros(*grads[0].shape[:-1], even + taps - 2)
    for band, grad in enumerate(grads):
        for t in range(taps):
            extended[..., t : t + even : 2].addcmul_(grad, filters[band, t])
    grad_signal = _periodic_fold(extended, even, taps // 2 - 1)
    if length % 2:  # the repeated last sample's gradient goes back to the sample it repeats
        grad_signal[..., -2] += grad_signal[..., -1]
        grad_signal = grad_signal[..., :-1]
    return grad_signal


def _synthesis_shifts(taps: int) -> tuple[list[tuple[int, int, int]], int, int]:
    """Polyphase form of the synthesis convolution on the zero-upsampled bands: output 2i + q only meets taps t of
    parity (F // 2 - q) % 2, which read band sample i + (q + t - F // 2) / 2 (periodically). Returns the
    (q, t, shift) triples and the lowest and highest shift."""
    shifts = [(q, t, (q + t - taps // 2) // 2) for q in (0, 1) for t in range(taps) if (q + t - taps // 2) % 2 == 0]
    return shifts, min(s for *_, s in shifts), max(s for *_, s in shifts)


def _synthesis(bands: tuple[torch.Tensor, torch.Tensor], filters: torch.Tensor) -> torch.Tensor:
    """(..., n) approximation and detail -> (..., 2n): a few shifted multiply-adds per output phase, no zeros and
    no convolution (a 1-channel conv1d is slow on CPU)."""
    half = bands[0].shape[-1]
    shifts, low, high = _synthesis_shifts(filters.shape[-1])
    extended = [_periodic_extension(band, -low, high) for band in bands]
    phases = [None, None]
    for q, t, shift in shifts:
        for band in (0, 1):
            term = extended[band][..., shift - low : shift - low + half]
            if phases[q] is None:
                phases[q] = term * filters[band, t]
            else:
                phases[q].addcmul_(term, filters[band, t])
    return torch.stack(phases, dim=-1).flatten(-2)


def _synthesis_adjoint(grad: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The transpose of `_synthesis`: the gradients of both bands."""
    half = grad.shape[-1] // 2
    shifts, low, high = _synthesis_shifts(filters.shape[-1])
    phases = grad.unflatten(-1, (half, 2))
    grads = []
    for band in (0, 1):
        extended = grad.new_zeros(*grad.shape[:-1], half + high - low)
        for q, t, shift in shifts:
            extended[..., shift - low : shift - low + half].addcmul_(phases[..., q], filters[band, t])
        grads.append(_periodic_fold(extended, half, -low))
    return grads[0], grads[1]


def _native_applies(*tensors: torch.Tensor) -> bool:
    """Whether the native kernels run these tensors (signal or bands first, filters last): float32 on the CPU, a
    non-empty signal, an even filter length (PyWavelets' filters are), the kernels built."""
    return (
        all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
        and tensors[0].shape[-1] > 0
        and tensors[-1].shape[-1] % 2 == 0
        and kernel_status().available
    )


def _run_native(entry: str, inputs: tuple[torch.Tensor, ...], outputs: tuple[torch.Tensor, ...], *sizes: int) -> None:
    """Call a kernel on contiguous inputs (held for the call) and freshly allocated outputs."""
    inputs = tuple(t.contiguous() for t in inputs)
    pointers = [t.data_ptr() for t in (*inputs, *outputs)]
    if getattr(kernel_status().library, entry)(*pointers, *sizes, torch.get_num_threads()):
        raise MemoryError(f"{entry} could not allocate its per-thread row buffer")


def _native_dwt(signal: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    length = signal.shape[-1]
    bands = tuple(signal.new_empty(*signal.shape[:-1], (length + 1) // 2) for _ in range(2))  # two bases, no views
    _run_native("mnemodyn_dwt", (signal, filters), bands, signal[..., 0].numel(), length, filters.shape[-1])
    return bands


def _native_dwt_adjoint(grads: tuple[torch.Tensor, torch.Tensor], filters: torch.Tensor, length: int) -> torch.Tensor:
    grad_signal = grads[0].new_empty(*grads[0].shape[:-1], length)
    rows = grads[0][..., 0].numel()
    _run_native("mnemodyn_dwt_adjoint", (*grads, filters), (grad_signal,), rows, length, filters.shape[-1])
    return grad_signal


def _native_idwt(bands: tuple[torch.Tensor, torch.Tensor], filters: torch.Tensor) -> torch.Tensor:
    half = bands[0].shape[-1]
    out = bands[0].new_empty(*bands[0].shape[:-1], 2 * half)
    _run_native("mnemodyn_idwt", (*bands, filters), (out,), bands[0][..., 0].numel(), half, filters.shape[-1])
    return out


def _native_idwt_adjoint(grad: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    half = grad.shape[-1] // 2
    grads = tuple(grad.new_empty(*grad.shape[:-1], half) for _ in range(2))
    _run_native("mnemodyn_idwt_adjoint", (grad, filters), grads, grad[..., 0].numel(), half, filters.shape[-1])
    return grads


class _PeriodizedDWT(torch.autograd.Function):
    """`dwt` with its backward written as the transposed filter bank (as many strided multiply-adds as the forward)
    instead of autograd's per-slice zero-filled gradients."""

    @staticmethod
    def forward(ctx, signal: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(filters)
        ctx.length = signal.shape[-1]
        if _native_applies(signal, filters):
            return _native_dwt(signal, filters)
        if ctx.length % 2:
            signal = torch.cat([signal, signal[..., -1:]], dim=-1)
        return _analysis(signal, filters)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_approximation: torch.Tensor, grad_detail: torch.Tensor) -> tuple[torch.Tensor, None]:
        (filters,) = ctx.saved_tensors
        if _native_applies(grad_approximation, grad_detail, filters):
            return _native_dwt_adjoint((grad_approximation, grad_detail), filters, ctx.length), None
        return _analysis_adjoint((grad_approximation, grad_detail), filters, ctx.length), None


class _PeriodizedIDWT(torch.autograd.Function):
    """`idwt` with its backward written as the transposed filter bank."""

    @staticmethod
    def forward(ctx, approximation: torch.Tensor, detail: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(filters)
        if _native_applies(approximation, detail, filters):
            return _native_idwt((approximation, detail), filters)
        return _synthesis((approximation, detail), filters)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        (filters,) = ctx.saved_tensors
        if _native_applies(grad, filters):
            return *_native_idwt_adjoint(grad, filters), None
        return *_synthesis_adjoint(grad, filters), None


def _constant(filters: torch.Tensor, name: str) -> None:
    if filters.requires_grad:
        raise ValueError(
            f"{name} are constants here (the transform's gradient reaches the signal, not the filters); pass "
            "them without requires_grad, e.g. from analysis_filter_bank / synthesis_filter_bank."
        )


def dwt(signal: torch.Tensor, analysis_filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One level of the periodized DWT.

    Args:
        signal: (..., N) real tensor, N >= 1.
        analysis_filters: (2, 1, F) from [`analysis_filter_bank`], without gradient.

    Returns:
        `(approximation, detail)`, each (..., ceil(N / 2)).
    """
    _constant(analysis_filters, "analysis_filters")
    return _PeriodizedDWT.apply(signal, analysis_filters[:, 0].to(signal.dtype))


def idwt(approximation: torch.Tensor, detail: torch.Tensor, synthesis_filters: torch.Tensor) -> torch.Tensor:
    """One level of the periodized inverse DWT.

    Args:
        approximation: (..., n) low-pass band.
        detail: (..., n) high-pass band, same shape.
        synthesis_filters: (1, 2, F) from [`synthesis_filter_bank`], without gradient.

    Returns:
        (..., 2n) reconstruction.
    """
    if approximation.shape != detail.shape:
        raise ValueError(
            f"idwt needs bands of equal shape, got {tuple(approximation.shape)} and {tuple(detail.shape)}."
        )
    _constant(synthesis_filters, "synthesis_filters")
    return _PeriodizedIDWT.apply(approximation, detail, synthesis_filters[0].to(approximation.dtype))


__all__ = ["analysis_filter_bank", "dwt", "idwt", "synthesis_filter_bank"]
