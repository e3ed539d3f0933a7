import numpy as np
import torch

from mnemodyn_hf.path_derivative import (
    backward_difference,
    reference_grid_spacing,
    reference_linear_derivative,
    reference_spline_derivative,
)


def hermite_derivative(x: np.ndarray, context_length: int) -> np.ndarray:
    """Independent float64 evaluation of the reference's first-layer derivative for one (T,) series: a cubic
    Hermite spline through unit-spaced knots with backward-difference knot slopes, differentiated at
    fraction t_i - t_{i-1} of interval i - 1 (fraction 0 of interval 0 for frame 0)."""
    slopes = np.diff(x, prepend=np.nan)
    slopes[0] = slopes[1]
    grid = (np.arange(len(x)) * (1.0 / context_length)).astype(np.float32).astype(np.float64)
    out = np.empty_like(x)
    for i in range(len(x)):
        j, s = (0, 0.0) if i == 0 else (i - 1, grid[i] - grid[i - 1])
        # derivative of the Hermite basis h00, h10, h01, h11 at s
        out[i] = (
            (6 * s**2 - 6 * s) * x[j]
            + (3 * s**2 - 4 * s + 1) * slopes[j]
            + (-6 * s**2 + 6 * s) * x[j + 1]
            + (3 * s**2 - 2 * s) * slopes[j + 1]
        )
    return out


def test_reference_spline_derivative_is_the_hermite_spline_read_off_grid():
    rng = np.random.default_rng(0)
    for length, context in ((50, 50), (64, 64), (120, 50)):
        x = rng.standard_normal((2, length, 3)).cumsum(axis=1)
        got = reference_spline_derivative(torch.from_numpy(x), context).numpy()
        for b in range(2):
            for r in range(3):
                np.testing.assert_allclose(got[b, :, r], hermite_derivative(x[b, :, r], context), atol=1e-9)


def test_reference_linear_derivative_scales_by_context_length():
    x = torch.randn(2, 64, 5, dtype=torch.float64)
    got = reference_linear_derivative(x, 64)
    expected = torch.diff(x, dim=1) * 64  # 1/64 is exact in float32
    assert torch.allclose(got[:, 1:], expected) and torch.allclose(got[:, 0], expected[:, 0])


def test_reference_grid_spacing_is_float32_rounded():
    spacing = reference_grid_spacing(torch.zeros(1, 50, 1, dtype=torch.float64), 50)
    assert spacing.shape == (49,)
    assert not torch.all(spacing == 1 / 50)  # 1/50 is not representable: rounding is reproduced
    assert torch.allclose(spacing, torch.full((49,), 1 / 50, dtype=torch.float64), rtol=1e-5)


def test_backward_difference_is_per_second_causal_and_differentiable():
    tr = 0.72
    ramp = (3.0 * torch.arange(10, dtype=torch.float64) * tr)[None, :, None]
    assert torch.allclose(backward_difference(ramp, 1 / tr), torch.full((1, 10, 1), 3.0, dtype=torch.float64))
    x = torch.randn(1, 20, 4, dtype=torch.float64, requires_grad=True)
    changed = x.detach().clone()
    changed[:, 12:] += 5.0
    assert torch.equal(backward_difference(x, 1.0)[:, :12], backward_difference(changed, 1.0)[:, :12])
    assert torch.autograd.gradcheck(lambda v: backward_difference(v, 1 / tr), (x,))
