import pytest
import torch

from mnemodyn_hf.windowing import apply_in_windows, cross_fade_weights, overlapping_window_starts


@pytest.mark.parametrize("length", [1, 49, 50, 51, 99, 100, 101, 1000, 4321])
@pytest.mark.parametrize("overlap", [0, 5, 12, 49])
def test_windows_cover_the_sequence_with_the_overlap(length, overlap):
    window = 50
    starts = overlapping_window_starts(length, window, overlap)
    assert starts[0] == 0
    if length <= window:
        assert starts == [0]
        return
    assert starts[-1] == length - window
    for previous, current in zip(starts, starts[1:]):
        assert 0 < current - previous <= window - overlap


def test_cross_fade_weights_are_positive_ramps():
    weights = cross_fade_weights(10, 4)
    assert torch.all(weights > 0) and weights.max() == 1
    assert torch.allclose(weights, weights.flip(0))
    assert torch.equal(cross_fade_weights(10, 0), torch.ones(10))


def test_identity_operator_is_reproduced_exactly_for_any_lengths():
    signal = torch.randn(3, 4, 300)
    lengths = [300, 17, 123]
    for position, length in enumerate(lengths):
        signal[position, :, length:] = 0
    out = apply_in_windows(lambda x: x, signal, lengths, window=64, overlap=16, windows_per_chunk=3)
    for position, length in enumerate(lengths):
        assert torch.allclose(out[position, :, :length], signal[position, :, :length], atol=1e-6)


def test_a_sample_does_not_depend_on_the_batch_padding():
    torch.manual_seed(0)
    kernel = torch.randn(4, 4, 64) * 0.1

    def operator(x):  # position-dependent, like the region convolutions
        return torch.einsum("nct,dct->ndt", x, kernel) + x

    alone = torch.randn(1, 4, 150)
    batch = torch.zeros(2, 4, 400)
    batch[0, :, :150] = alone[0]
    batch[1] = torch.randn(4, 400)
    together = apply_in_windows(operator, batch, [150, 400], window=64, overlap=16, windows_per_chunk=2)
    by_itself = apply_in_windows(operator, alone, [150], window=64, overlap=16, windows_per_chunk=5)
    assert torch.allclose(together[0, :, :150], by_itself[0], atol=1e-6)
