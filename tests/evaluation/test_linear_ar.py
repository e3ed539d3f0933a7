"""The linear autoregressive reconstruction predictor: a planted VAR(2), its fills under the three mask layouts, and
a real HCP run (shared `hcp_aal2/`, skipped without it)."""

from __future__ import annotations

import pytest
import torch

from mnemodyn_hf.evaluation.linear_ar import LinearAutoregression, pooled_r2, tune_linear_autoregression
from mnemodyn_hf.modeling_pretraining import hidden_entry_masks
from mnemodyn_hf.preprocessing.robust_scaling import zscore_frames
from mnemodyn_hf.reconstruction_predictors import linear_interpolation_fill

ROIS = 6


def _planted() -> tuple[torch.Tensor, torch.Tensor]:
    """A stable VAR(2): A_1 = 0.5 I + noise, A_2 = -0.2 I + noise, (R, R) each."""
    generator = torch.Generator().manual_seed(0)
    first = 0.5 * torch.eye(ROIS) + 0.1 * torch.randn(ROIS, ROIS, generator=generator)
    second = -0.2 * torch.eye(ROIS) + 0.05 * torch.randn(ROIS, ROIS, generator=generator)
    return first.double(), second.double()


def _simulate(frames: int, seed: int, burn_in: int = 100) -> torch.Tensor:
    """(frames, R) of the planted VAR(2) driven by unit Gaussian noise, around a mean of 1."""
    first, second = _planted()
    noise = torch.randn(frames + burn_in, ROIS, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    series = torch.zeros_like(noise)
    for t in range(2, len(series)):
        series[t] = first @ series[t - 1] + second @ series[t - 2] + noise[t]
    return series[burn_in:] + 1.0


def _masks(layout: str, windows: int, frames: int, rois: int) -> torch.Tensor:
    """(W, T, R) bool, True = visible: the pretraining objective's masks (spans of 8 frames, ratio 0.5)."""
    seeds = torch.arange(windows) + 17
    return ~hidden_entry_masks(seeds, torch.full((windows,), frames), frames, rois, layout, 0.5, 8)


@pytest.fixture(scope="module")
def planted_fit() -> LinearAutoregression:
    return LinearAutoregression(order=2, alpha=0.0).fit([_simulate(2000, seed) for seed in range(3)])


def test_the_fit_recovers_the_planted_coefficients(planted_fit):
    first, second = _planted()
    recovered = planted_fit.coefficients()
    assert recovered.shape == (2, ROIS, ROIS)
    assert (recovered[0] - first).abs().max() < 0.06 and (recovered[1] - second).abs().max() < 0.06
    assert (planted_fit.mean_ - 1.0).abs().max() < 0.1
    # order 1 from the same sums is another model: the planted lag 2 is not in it
    assert (planted_fit.set_hyperparameters(1, 0.0).coefficients()[0] - first).abs().max() > 0.1
    planted_fit.set_hyperparameters(2, 0.0)


@pytest.mark.parametrize("layout", ["per_roi", "whole_frame", "forecast"])
def test_every_layout_is_filled_better_than_the_mean_and_visible_entries_pass_through(planted_fit, layout):
    values = torch.stack([_simulate(64, 100 + seed) for seed in range(8)]).float()
    visible = _masks(layout, len(values), 64, ROIS)
    filled = planted_fit.fill(values, visible)
    assert filled.dtype == values.dtype and torch.equal(filled[visible], values[visible])
    assert torch.isfinite(filled).all()
    mean_fill = torch.where(visible, values, planted_fit.mean_.float())
    assert pooled_r2(filled, values, ~visible) > pooled_r2(mean_fill, values, ~visible) + 0.05


def test_blending_the_backward_model_helps_spans_between_visible_frames(planted_fit):
    values = torch.stack([_simulate(64, 200 + seed) for seed in range(8)])
    visible = _masks("whole_frame", len(values), 64, ROIS)
    both = pooled_r2(planted_fit.fill(values, visible), values, ~visible)
    planted_fit.bidirectional = False
    try:
        forward = pooled_r2(planted_fit.fill(values, visible), values, ~visible)
    finally:
        planted_fit.bidirectional = True
    assert both > forward


def test_tuning_records_every_cell_and_picks_the_best_on_the_windows_given():
    runs = [_simulate(1000, seed) for seed in range(2)]
    values = torch.stack([_simulate(64, 300 + seed) for seed in range(6)])
    visible = _masks("forecast", len(values), 64, ROIS)
    model, choice = tune_linear_autoregression(runs, values, visible, orders=(1, 2), alphas=(1e-3, 10.0))
    assert len(choice["grid"]) == 4 and (model.order, model.alpha) == (choice["order"], choice["alpha"])
    assert choice["validation_r2"] == max(cell["validation_r2"] for cell in choice["grid"])
    assert choice["order"] == 2 and choice["alpha"] == 1e-3  # the planted order, the light penalty
    assert pooled_r2(model.fill(values, visible), values, ~visible) == pytest.approx(choice["validation_r2"])


def test_fill_refuses_an_unfitted_model_and_a_lower_order_than_fitted_only():
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearAutoregression().fill(torch.zeros(1, 8, ROIS), torch.ones(1, 8, ROIS, dtype=torch.bool))
    model = LinearAutoregression(order=2).fit([_simulate(200, 0)])
    with pytest.raises(ValueError, match=r"order must be in 1\.\.2"):
        model.set_hyperparameters(4, 1e-3)


def test_on_a_real_hcp_run_forecasts_beat_interpolation(shared_data):
    """Fit on 4 HCP subjects (z-scored runs), forecast the last 8 frames of 256-frame windows of another."""
    import numpy as np

    arrays_file = shared_data / "hcp_aal2" / "aal2_float32.npz"
    if not arrays_file.is_file():
        pytest.skip(f"no hcp_aal2/ in {shared_data}")
    with np.load(arrays_file) as arrays:
        runs = [torch.as_tensor(zscore_frames(arrays[key].astype(np.float64))) for key in sorted(arrays.files)[:5]]
    test = runs.pop()
    values = torch.stack([test[start : start + 256] for start in range(0, 1024, 256)])
    visible = _masks("forecast", len(values), 256, 94)
    model = LinearAutoregression(order=4, alpha=1e-3).fit(runs)
    linear = pooled_r2(model.fill(values, visible), values, ~visible)
    interpolation = pooled_r2(linear_interpolation_fill(values, visible), values, ~visible)
    assert linear > 0.1 and linear > interpolation + 0.1


def test_the_batched_conditional_mean_equals_the_spatial_predictors():
    from mnemodyn_hf.evaluation.linear_ar import _conditional_deviation
    from mnemodyn_hf.evaluation.spatial_predictors import SpatialConditionalMean

    generator = torch.Generator().manual_seed(3)
    mixing = torch.randn(ROIS, ROIS, generator=generator, dtype=torch.float64)
    covariance = mixing @ mixing.T + 0.5 * torch.eye(ROIS, dtype=torch.float64)
    visible = torch.rand(40, ROIS, generator=generator) < 0.5
    visible[0], visible[1] = False, True  # a fully hidden and a fully visible row
    deviation = torch.where(visible, torch.randn(40, ROIS, generator=generator, dtype=torch.float64), 0.0)
    spatial = SpatialConditionalMean.from_moments(torch.zeros(ROIS, dtype=torch.float64), covariance)
    expected = torch.where(visible, 0.0, spatial.conditional_deviation(deviation, visible))
    got = _conditional_deviation(torch.linalg.inv(covariance), deviation, visible)
    torch.testing.assert_close(got, expected)
