"""Memory-bounded contraction of the MnemoDyn vector field with the path derivative.

For n frames with bottleneck codes `z` (n, r), the vector field is `f = act(z W^T + b)` reshaped to
(n, R, C), and the latent velocity is `v[t, c] = sum_r f[t, r, c] dX[t, r]`. The expansion `f` has R*C values
per frame (135,000 for the released model), so it is never materialised for all frames: the forward pass
walks over chunks of frames, and the backward pass recomputes each chunk's expansion and reduces its
gradients at once. Peak memory is one chunk's expansion, in training as in inference.

For tanh in float32 on CPU, the fused C kernel of `native_kernels.py` never writes the expansion at all (and
approximates tanh to 4e-7); everything else runs the chunked eager path. `implementation="auto"` picks between the
two per machine: the first call of a shape times both on `TUNING_FRAMES` frames of it, forward without gradients
(inference) and forward + backward (training), and keeps the faster of each in a file beside the built library
(`native_kernels.store_choice`), so later processes on the machine reuse the choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .configuration_mnemodyn import FIELD_IMPLEMENTATIONS
from .native_kernels import kernel_status, store_choice, stored_choice

#: Frames of the timing run that picks the fused kernel or the eager path for a shape.
TUNING_FRAMES = 64
_TUNING_REPEATS = 3
_choices: dict[str, dict] = {}  # this process's choices, by `_tuning_key`


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _with_bias_row(code, weight, bias) -> tuple[torch.Tensor, torch.Tensor]:
    """`[z, 1]` (n, r + 1) and `[W^T; b]` (r + 1, R*C): the expansion `z W^T + b` as one GEMM, so no pass copies
    the bias into each chunk first (as `addmm` does); long contiguous rows keep the skinny GEMMs fast."""
    code_and_one = torch.cat([code, code.new_ones(code.shape[0], 1)], dim=1)
    return code_and_one, torch.cat([weight.t(), bias[None]], dim=0)


def _is_tanh(activation: Callable) -> bool:
    """Whether the activation is tanh (the model's default), which the contraction handles in place."""
    return activation is torch.tanh or isinstance(activation, torch.nn.Tanh)


def _activated(pre_activation: torch.Tensor, activation: Callable) -> torch.Tensor:
    """`activation(pre_activation)`, in place for tanh (no second buffer the size of the chunk's field)."""
    if _is_tanh(activation):
        return pre_activation.tanh_()
    return activation(pre_activation)


def _activation_gradient(pre_activation, derivative, grad_out, activation, num_rois, grad_derivative):
    """Gradient of `sum_{r,c} act(pre)[n, r, c] dX[n, r] g[n, c]` with respect to `pre` (n, R*C), written over
    `pre_activation`; fills `grad_derivative` (n, R) = sum_c act(pre)[n, r, c] g[n, c] when given.

    For tanh everything happens in the chunk's buffer: f = tanh(pre), then (1 - f^2) dX, then * g (three passes,
    no allocation); other activations go through autograd."""
    frames = pre_activation.shape[0]
    if _is_tanh(activation):
        field = pre_activation.tanh_().view(frames, num_rois, -1)
        if grad_derivative is not None:
            torch.bmm(field, grad_out.unsqueeze(2), out=grad_derivative.unsqueeze(2))
        # (1 - f^2) * dX in one pass (ATen's fused tanh derivative, broadcasting dX over channels), then * g
        torch.ops.aten.tanh_backward.grad_input(derivative.unsqueeze(2).expand_as(field), field, grad_input=field)
        field.mul_(grad_out.unsqueeze(1))
        return pre_activation
    with torch.enable_grad():
        pre_activation = pre_activation.detach().requires_grad_()
        field = activation(pre_activation)
    if grad_derivative is not None:
        torch.bmm(field.detach().view(frames, num_rois, -1), grad_out.unsqueeze(2), out=grad_derivative.unsqueeze(2))
    grad_field = (derivative.unsqueeze(2) * grad_out.unsqueeze(1)).view_as(field)
    (grad_pre,) = torch.autograd.grad(field, pre_activation, grad_field)
    return grad_pre


class _ChunkedFieldContraction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, code, derivative, weight, bias, activation, num_rois, frames_per_chunk):
        frames, channels = code.shape[0], weight.shape[0] // num_rois
        velocity = code.new_empty(frames, channels)
        code_and_one, weight_and_bias_rows = _with_bias_row(code, weight, bias)
        buffer = code.new_empty(min(frames, frames_per_chunk), weight.shape[0])  # one chunk's field, reused
        for rows in _chunks(frames, frames_per_chunk):
            pre_activation = torch.mm(code_and_one[rows], weight_and_bias_rows, out=buffer[: rows.stop - rows.start])
            field = _activated(pre_activation, activation)
            torch.bmm(
                derivative[rows].unsqueeze(1), field.view(-1, num_rois, channels), out=velocity[rows].unsqueeze(1)
            )
        ctx.save_for_backward(code, derivative, weight, bias)
        ctx.activation, ctx.num_rois, ctx.frames_per_chunk = activation, num_rois, frames_per_chunk
        return velocity

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_velocity):
        code, derivative, weight, bias = ctx.saved_tensors
        need_code, need_derivative, need_weight, need_bias = ctx.needs_input_grad[:4]
        num_rois = ctx.num_rois
        code_and_one, weight_and_bias_rows = _with_bias_row(code, weight, bias)
        weight_rows = weight_and_bias_rows[:-1]
        # weight and bias gradients together, transposed: [z, 1]^T @ grad_pre, accumulated as (r + 1, R*C)
        grad_weight_and_bias = code.new_zeros(code.shape[1] + 1, weight.shape[0]) if need_weight or need_bias else None
        grad_code_rows = code.new_empty(code.shape[1], code.shape[0]) if need_code else None  # (r, n)
        grad_derivative = torch.empty_like(derivative) if need_derivative else None
        buffer = code.new_empty(min(code.shape[0], ctx.frames_per_chunk), weight.shape[0])
        for rows in _chunks(code.shape[0], ctx.frames_per_chunk):
            grad_out = grad_velocity[rows]
            pre_activation = torch.mm(code_and_one[rows], weight_and_bias_rows, out=buffer[: rows.stop - rows.start])
            grad_pre = _activation_gradient(
                pre_activation,
                derivative[rows],
                grad_out,
                ctx.activation,
                num_rois,
                grad_derivative[rows] if need_derivative else None,
            )
            if grad_weight_and_bias is not None:
                grad_weight_and_bias.addmm_(code_and_one[rows].t(), grad_pre)
            if need_code:
                torch.mm(weight_rows, grad_pre.t(), out=grad_code_rows[:, rows])  # 2.4x faster than grad_pre @ W
        grad_code = grad_code_rows.t() if need_code else None
        grad_weight = grad_weight_and_bias[:-1].t() if need_weight else None
        grad_bias = grad_weight_and_bias[-1] if need_bias else None
        return grad_code, grad_derivative, grad_weight, grad_bias, None, None, None


def _run_kernel(
    name: str, tensors: tuple[torch.Tensor | None, ...], frames, bottleneck, channels, num_rois, threads
) -> None:
    """Call one entry point of the fused kernel on contiguous float32 tensors (held by the caller while it runs);
    None passes a null pointer (an output the kernel skips)."""
    if not all(t is None or t.is_contiguous() for t in tensors):  # raw pointers: other layouts would read garbage
        raise ValueError(f"{name} needs contiguous tensors")
    entry = getattr(kernel_status().library, name)
    pointers = (None if t is None else t.data_ptr() for t in tensors)
    if entry(*pointers, frames, bottleneck, channels, num_rois, threads):
        raise ValueError(f"{name} needs the ROI axis zero-padded to a multiple of {_ROI_PADDING} (got {num_rois})")


#: The kernel's ROI axis is zero-padded to a multiple of this (the widest SIMD vector, AVX-512's 16 floats), so every
#: ROI runs in vector lanes: a padded ROI has zero weight, bias and derivative, so it adds nothing to any output.
_ROI_PADDING = 16


class _NativeTanhFieldContraction(torch.autograd.Function):
    """The fused kernel, on the transposed layout it reads: weight (K, C, R'), bias (C, R'), derivative (N, R'), with
    R' the ROI count zero-padded to a multiple of `_ROI_PADDING`."""

    @staticmethod
    def forward(ctx, code, derivative, weight, bias, num_rois):
        frames, bottleneck = code.shape
        channels = weight.shape[0] // num_rois
        padding = (0, -num_rois % _ROI_PADDING)
        code, derivative = code.contiguous(), F.pad(derivative, padding).contiguous()
        weight_t = F.pad(weight.detach().reshape(num_rois, channels, bottleneck).permute(2, 1, 0), padding).contiguous()
        bias_t = F.pad(bias.detach().reshape(num_rois, channels).t(), padding).contiguous()
        velocity = code.new_empty(frames, channels)
        tensors = (code, derivative, weight_t, bias_t, velocity)
        _run_kernel(
            "mnemodyn_tanh_field_forward",
            tensors,
            frames,
            bottleneck,
            channels,
            weight_t.shape[2],
            torch.get_num_threads(),
        )
        ctx.save_for_backward(code, derivative, weight_t, bias_t)
        ctx.num_rois = num_rois
        return velocity

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_velocity):
        code, derivative, weight_t, bias_t = ctx.saved_tensors
        bottleneck, channels, padded_rois = weight_t.shape
        frames, threads, num_rois = code.shape[0], torch.get_num_threads(), ctx.num_rois
        grad_velocity = grad_velocity.contiguous()  # held here: the kernel reads it through a raw pointer
        grad_code = torch.empty_like(code)
        # the derivative usually needs none (computed without gradients): the kernel then skips that sum
        grad_derivative = torch.empty_like(derivative) if ctx.needs_input_grad[1] else None
        per_thread = code.new_zeros(threads, bottleneck + 1, channels, padded_rois)
        tensors = (code, derivative, weight_t, bias_t, grad_velocity, grad_code, grad_derivative, per_thread)
        _run_kernel("mnemodyn_tanh_field_backward", tensors, frames, bottleneck, channels, padded_rois, threads)
        summed = per_thread.sum(0)[..., :num_rois]  # (K + 1, C, R): the threads' partial sums
        grad_weight = summed[:bottleneck].permute(2, 1, 0).reshape(num_rois * channels, bottleneck)
        grad_bias = summed[bottleneck].t().reshape(-1)
        grad_derivative = None if grad_derivative is None else grad_derivative[:, :num_rois]
        return grad_code, grad_derivative, grad_weight, grad_bias, None


def _native_applies(tensors: tuple[torch.Tensor, ...], activation: Callable) -> bool:
    return _is_tanh(activation) and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def _tuning_key(bottleneck: int, channels: int, num_rois: int, frames_per_chunk: int) -> str:
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, bottleneck {bottleneck}, "
        f"channels {channels}, rois {num_rois}, frames_per_chunk {frames_per_chunk}"
    )


def _seconds(step: Callable[[str], None], implementation: str) -> float:
    start = time.perf_counter()
    step(implementation)
    return time.perf_counter() - start


def _tune(bottleneck: int, channels: int, num_rois: int, frames_per_chunk: int) -> dict:
    """Time the fused kernel and the eager path on `TUNING_FRAMES` random frames of this shape, interleaved, best of
    `_TUNING_REPEATS` after a warm-up: {"inference": faster forward, "training": faster forward + backward,
    "seconds": the best times}. The kernel is kept on a tie."""
    generator = torch.Generator().manual_seed(0)
    shapes = ((TUNING_FRAMES, bottleneck), (TUNING_FRAMES, num_rois), (num_rois * channels, bottleneck))
    code, derivative, weight = (torch.randn(shape, generator=generator) for shape in shapes)
    inputs = (code, derivative, weight * (bottleneck * num_rois) ** -0.5, torch.zeros(num_rois * channels))
    leaves = [t.clone().requires_grad_() for t in inputs]

    def inference(implementation: str) -> None:
        with torch.no_grad():
            contract_vector_field(*inputs, torch.tanh, frames_per_chunk, implementation)

    def training(implementation: str) -> None:
        with torch.enable_grad():
            contract_vector_field(*leaves, torch.tanh, frames_per_chunk, implementation).sum().backward()

    seconds = {}
    with torch.inference_mode(False):
        for mode, step in (("inference", inference), ("training", training)):
            best = {name: float("inf") for name in ("native", "eager")}
            for repeat in range(_TUNING_REPEATS + 1):
                for name in best:
                    elapsed = _seconds(step, name)
                    best[name] = min(best[name], elapsed) if repeat else best[name]  # the first is a warm-up
            seconds[mode] = best
    choice = {mode: "native" if best["native"] <= best["eager"] else "eager" for mode, best in seconds.items()}
    return {**choice, "seconds": seconds}


def _tuned_choice(bottleneck: int, channels: int, num_rois: int, frames_per_chunk: int) -> dict:
    """The stored choice for this shape on this machine, or a new timing, kept in this process and on disk."""
    key = _tuning_key(bottleneck, channels, num_rois, frames_per_chunk)
    if key not in _choices:
        choice = stored_choice(key)
        if choice is None or {choice.get("inference"), choice.get("training")} - {"native", "eager"}:
            choice = _tune(bottleneck, channels, num_rois, frames_per_chunk)
            store_choice(key, choice)
        _choices[key] = choice
    return _choices[key]


def _auto_runs_native(tensors: tuple[torch.Tensor, ...], frames_per_chunk: int) -> bool:
    code, derivative, weight, _ = tensors
    num_rois = derivative.shape[1]
    choice = _tuned_choice(code.shape[1], weight.shape[0] // num_rois, num_rois, frames_per_chunk)
    training = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
    return choice["training" if training else "inference"] == "native"


def contract_vector_field(
    code: torch.Tensor,
    derivative: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    activation: Callable[[torch.Tensor], torch.Tensor],
    frames_per_chunk: int,
    implementation: str = "auto",
) -> torch.Tensor:
    """Latent velocity `sum_r act(z W^T + b)[:, r, :] * dX[:, r]`, chunked in forward and backward.

    Args:
        code: (n, r) bottleneck codes.
        derivative: (n, R) path derivative.
        weight: (R * C, r) expansion weight, rows ROI-major (row = roi * C + channel).
        bias: (R * C,) expansion bias.
        activation: element-wise non-linearity.
        frames_per_chunk: frames expanded at once (eager path).
        implementation: `"auto"` (where the fused kernel applies and is built, whichever of it and the eager path
            this machine's timing chose for the shape and for training or inference; else eager), `"eager"`, or
            `"native"` (the fused kernel or an error saying why it cannot run).

    Returns:
        (n, C) latent velocity, float32 under autocast: the contraction runs in float32 with autocast off (a sum
        of R products, and a backward pass that autocast would not reach with the forward's dtypes).
    """
    if torch.is_autocast_enabled(code.device.type):
        with torch.autocast(device_type=code.device.type, enabled=False):
            return contract_vector_field(
                code.float(),
                derivative.float(),
                weight.float(),
                bias.float(),
                activation,
                frames_per_chunk,
                implementation,
            )
    tensors = (code, derivative, weight, bias)
    if implementation not in FIELD_IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {FIELD_IMPLEMENTATIONS}, got {implementation!r}")
    if implementation == "native":
        if not _native_applies(tensors, activation):
            raise ValueError(
                "the fused field kernel runs tanh on float32 CPU tensors only; use field_implementation='eager' "
                "(or 'auto', which picks it where it applies)"
            )
        if not kernel_status().available:
            raise RuntimeError(
                f"the fused field kernel is unavailable: {kernel_status().reason}; "
                "set field_implementation='eager' (or 'auto') to run without it"
            )
    native = implementation != "eager" and _native_applies(tensors, activation) and kernel_status().available
    if native and (implementation == "native" or _auto_runs_native(tensors, frames_per_chunk)):
        return _NativeTanhFieldContraction.apply(code, derivative, weight, bias, derivative.shape[1])
    return _ChunkedFieldContraction.apply(*tensors, activation, derivative.shape[1], frames_per_chunk)


__all__ = ["contract_vector_field"]
