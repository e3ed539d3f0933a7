"""Path derivatives dX/dt fed to the MnemoDyn vector field, computed inside the model from the frames.

Two semantics exist side by side (see `MnemoDynConfig.reference_compatible`):

| | clean (new models) | reference-compatible (converted checkpoints) |
|---|---|---|
| first layer | backward difference / TR | one-step-lagged Hermite spline, per-sample units |
| later layers | backward difference / TR | backward difference x `context_length` |
| gradient | flows through the derivative | none (the reference computes it under `no_grad`) |

Both are causal: frame i depends on frames <= i (frame 0 reuses the first difference), so padding appended
after the last real frame never changes the derivative of a real frame.
"""

from __future__ import annotations

import numpy as np
import torch


def reference_grid_spacing(frames: torch.Tensor, context_length: int) -> torch.Tensor:
    """Spacing (T - 1,) of the reference time grid `t_i = float32(i * (1 / context_length))` for T frames.

    For T = context_length this is the reference's `float32(np.arange(0, 1, 1 / context_length))`; longer
    sequences continue the same grid. The spacing is not exactly `1 / context_length`, and the derivative is
    sensitive enough (it is multiplied by about `context_length`) that parity needs the same rounding.
    """
    grid = (np.arange(frames.shape[1]) * (1.0 / context_length)).astype(np.float32)
    return torch.from_numpy(np.diff(grid)).to(device=frames.device, dtype=frames.dtype)


def backward_difference(frames: torch.Tensor, scale: float) -> torch.Tensor:
    """`scale * (x_i - x_{i-1})`, with frame 0 given the first difference `x_1 - x_0`.

    Args:
        frames: (B, T, R) with T >= 2.
        scale: multiplier, e.g. `1 / TR` for a derivative per second.

    Returns:
        (B, T, R).
    """
    step = frames[:, 1:] - frames[:, :-1]
    return torch.cat([step[:, :1], step], dim=1) * scale


def reference_spline_derivative(frames: torch.Tensor, context_length: int) -> torch.Tensor:
    """The derivative the authors' first layer sees (torchcde Hermite cubic with backward differences).

    Their spline coefficients are built on unit-spaced knots but queried on the grid `i / context_length`, so
    frame i >= 1 reads interval `j = i - 1` at fraction `f = t_i - t_{i-1}` (about `1 / context_length`, see
    [`reference_grid_spacing`]):
    `d_j + c2_j f + d3_j f^2`, where `d` are the knot derivatives (backward differences, `d_0 = d_1`),
    `c2_j = 2 (3 dx_j - 2 d_j - d_{j+1})`, `d3_j = 3 (d_j + d_{j+1} - 2 dx_j)` and `dx_j = x_{j+1} - x_j`.
    Frame 0 reads interval 0 at fraction 0, i.e. `d_0`.

    Args:
        frames: (B, T, R) with T >= 2.
        context_length: the reference's `original_length` (size of its time grid).

    Returns:
        (B, T, R).
    """
    knot = backward_difference(frames, 1.0)
    step = frames[:, 1:] - frames[:, :-1]
    left, right = knot[:, :-1], knot[:, 1:]
    quadratic = 2.0 * (3.0 * step - 2.0 * left - right)
    cubic = 3.0 * (left + right - 2.0 * step)
    fraction = reference_grid_spacing(frames, context_length)[:, None]
    inside = left + (quadratic + cubic * fraction) * fraction
    return torch.cat([left[:, :1], inside], dim=1)


def reference_linear_derivative(frames: torch.Tensor, context_length: int) -> torch.Tensor:
    """The derivative the authors' later layers see (torchcde linear interpolation of the layer input on the
    grid `i / context_length`): `(x_i - x_{i-1}) / (t_i - t_{i-1})`, about `(x_i - x_{i-1}) * context_length`;
    frame 0 reuses frame 1's value.

    Args:
        frames: (B, T, R) with T >= 2.
        context_length: the reference's `original_length`.

    Returns:
        (B, T, R).
    """
    step = (frames[:, 1:] - frames[:, :-1]) / reference_grid_spacing(frames, context_length)[:, None]
    return torch.cat([step[:, :1], step], dim=1)


__all__ = [
    "backward_difference",
    "reference_grid_spacing",
    "reference_linear_derivative",
    "reference_spline_derivative",
]
