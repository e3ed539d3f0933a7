"""Memory-bounded contraction of the MnemoDyn vector field with the path derivative.

For n frames with bottleneck codes `z` (n, r), the vector field is `f = act(z W^T + b)` reshaped to
(n, R, C), and the latent velocity is `v[t, c] = sum_r f[t, r, c] dX[t, r]`. The expansion `f` has R*C values
per frame (135,000 for the released model), so it is never materialised for all frames: the forward pass
walks over chunks of frames, and the backward pass recomputes each chunk's expansion and reduces its
gradients at once. Peak memory is one chunk's expansion, in training as in inference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


class _ChunkedFieldContraction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, code, derivative, weight, bias, activation, num_rois, frames_per_chunk):
        frames, channels = code.shape[0], weight.shape[0] // num_rois
        velocity = code.new_empty(frames, channels)
        weight_rows = weight.t().contiguous()
        for rows in _chunks(frames, frames_per_chunk):
            field = activation(torch.addmm(bias, code[rows], weight_rows)).view(-1, num_rois, channels)
            velocity[rows] = torch.bmm(derivative[rows].unsqueeze(1), field).squeeze(1)
        ctx.save_for_backward(code, derivative, weight, bias)
        ctx.activation, ctx.num_rois, ctx.frames_per_chunk = activation, num_rois, frames_per_chunk
        return velocity

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_velocity):
        code, derivative, weight, bias = ctx.saved_tensors
        need_code, need_derivative, need_weight, need_bias = ctx.needs_input_grad[:4]
        num_rois, channels = ctx.num_rois, weight.shape[0] // ctx.num_rois
        weight_rows = weight.t().contiguous()  # (r, R*C): long contiguous rows keep the small GEMMs fast
        # weight and bias gradients together, transposed: [z, 1]^T @ grad_pre, accumulated as (r + 1, R*C)
        code_and_one = torch.cat([code, code.new_ones(code.shape[0], 1)], dim=1)
        grad_weight_and_bias = code.new_zeros(code.shape[1] + 1, weight.shape[0]) if need_weight or need_bias else None
        grad_code = torch.empty_like(code) if need_code else None
        grad_derivative = torch.empty_like(derivative) if need_derivative else None
        for rows in _chunks(code.shape[0], ctx.frames_per_chunk):
            with torch.enable_grad():
                pre_activation = torch.addmm(bias, code[rows], weight_rows).requires_grad_()
                field = ctx.activation(pre_activation)
            grad_out = grad_velocity[rows]
            if need_derivative:
                grad_derivative[rows] = torch.bmm(
                    field.detach().view(-1, num_rois, channels), grad_out.unsqueeze(2)
                ).squeeze(2)
            grad_field = (derivative[rows].unsqueeze(2) * grad_out.unsqueeze(1)).view_as(field)
            (grad_pre,) = torch.autograd.grad(field, pre_activation, grad_field)
            del field, grad_field
            if grad_weight_and_bias is not None:
                grad_weight_and_bias.addmm_(code_and_one[rows].t(), grad_pre)
            if need_code:
                grad_code[rows] = torch.mm(grad_pre, weight_rows.t())
        grad_weight = grad_weight_and_bias[:-1].t() if need_weight else None
        grad_bias = grad_weight_and_bias[-1] if need_bias else None
        return grad_code, grad_derivative, grad_weight, grad_bias, None, None, None


def contract_vector_field(
    code: torch.Tensor,
    derivative: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    activation: Callable[[torch.Tensor], torch.Tensor],
    frames_per_chunk: int,
) -> torch.Tensor:
    """Latent velocity `sum_r act(z W^T + b)[:, r, :] * dX[:, r]`, chunked in forward and backward.

    Args:
        code: (n, r) bottleneck codes.
        derivative: (n, R) path derivative.
        weight: (R * C, r) expansion weight, rows ROI-major (row = roi * C + channel).
        bias: (R * C,) expansion bias.
        activation: element-wise non-linearity.
        frames_per_chunk: frames expanded at once.

    Returns:
        (n, C) latent velocity, float32 under autocast: the contraction runs in float32 with autocast off (a sum
        of R products, and a backward pass that autocast would not reach with the forward's dtypes).
    """
    if torch.is_autocast_enabled(code.device.type):
        with torch.autocast(device_type=code.device.type, enabled=False):
            return _ChunkedFieldContraction.apply(
                code.float(),
                derivative.float(),
                weight.float(),
                bias.float(),
                activation,
                derivative.shape[1],
                frames_per_chunk,
            )
    return _ChunkedFieldContraction.apply(
        code, derivative, weight, bias, activation, derivative.shape[1], frames_per_chunk
    )


__all__ = ["contract_vector_field"]
