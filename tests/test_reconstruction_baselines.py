import torch

from mnemodyn_hf.reconstruction_baselines import linear_interpolation_fill, roi_mean_fill


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
