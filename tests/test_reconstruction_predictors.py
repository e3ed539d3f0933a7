import torch

from mnemodyn_hf.masked_inputs import linear_interpolation_fill as backbone_interpolation
from mnemodyn_hf.reconstruction_predictors import (
    TRIVIAL_PREDICTORS,
    linear_interpolation_fill,
    r_squared_from_sums,
    roi_mean_fill,
    scored_sums,
)


def test_linear_interpolation_is_exact_on_lines_and_flat_beyond_the_visible_frames():
    time = torch.arange(10.0)
    values = torch.stack([2 * time + 1, -time], dim=1)[None]  # (1, 10, 2)
    visible = torch.zeros(1, 10, 2, dtype=torch.bool)
    visible[0, [2, 7], 0] = True
    visible[0, [0, 4, 9], 1] = True
    filled = linear_interpolation_fill(values * visible, visible)
    torch.testing.assert_close(filled[0, 2:8, 0], values[0, 2:8, 0])
    torch.testing.assert_close(filled[0, :2, 0], torch.full((2,), 5.0))  # nearest visible value at the edges
    torch.testing.assert_close(filled[0, 8:, 0], torch.full((2,), 15.0))
    torch.testing.assert_close(filled[0, :, 1], values[0, :, 1])


def test_roi_mean_fills_hidden_entries_with_the_visible_mean_and_zero_without_any():
    values = torch.tensor([[[1.0, 5.0], [3.0, 6.0], [100.0, 7.0]]])
    visible = torch.tensor([[[True, False], [True, False], [False, False]]])
    filled = roi_mean_fill(values, visible)
    torch.testing.assert_close(filled[0, :, 0], torch.tensor([1.0, 3.0, 2.0]))
    torch.testing.assert_close(filled[0, :, 1], torch.zeros(3))
    assert torch.equal(linear_interpolation_fill(values, visible)[0, :, 1], torch.zeros(3))


def test_the_interpolation_predictor_is_the_backbone_inputs_interpolation():
    assert linear_interpolation_fill is backbone_interpolation  # one implementation


def test_trivial_predictors_read_what_their_names_say():
    clean = torch.randn(2, 8, 3, generator=torch.Generator().manual_seed(0))
    corrupted = clean + 1.0
    observed = torch.rand(2, 8, 3, generator=torch.Generator().manual_seed(1)) < 0.5
    predictions = {name: predictor(clean, corrupted, observed) for name, predictor in TRIVIAL_PREDICTORS.items()}
    assert torch.equal(predictions["roi_mean"], roi_mean_fill(clean, observed))
    assert torch.equal(predictions["interpolation"], linear_interpolation_fill(clean, observed))
    assert torch.equal(predictions["noisy_input"], corrupted)


def test_pooled_r_squared_from_per_sample_sums_is_one_minus_sse_over_sst():
    generator = torch.Generator().manual_seed(2)
    target, noise = torch.randn(3, 10, 4, generator=generator), torch.randn(3, 10, 4, generator=generator)
    scored = torch.rand(3, 10, 4, generator=generator) < 0.6
    sums = scored_sums(target + 0.5 * noise, target, scored)
    assert sums.shape == (3, 4) and sums[:, 1].sum() == scored.sum()
    values = target[scored].double()
    expected = 1 - ((0.5 * noise)[scored].double() ** 2).sum() / ((values - values.mean()) ** 2).sum()
    assert abs(r_squared_from_sums(sums.sum(0)) - float(expected)) < 1e-6  # float32 predictions
