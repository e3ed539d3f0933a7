import math

import pytest
import pywt
import torch
from transformers import AutoModel

from mnemodyn_hf import MnemoDynModel
from tests.conftest import tiny_config


def _model(**overrides) -> MnemoDynModel:
    torch.manual_seed(0)
    return MnemoDynModel(tiny_config(**overrides)).eval()


@pytest.mark.parametrize("reference_compatible", [False, True])
@pytest.mark.parametrize("frames", [2, 7, 100, 490, 1200, 5000])
def test_any_length_gives_finite_outputs(frames, reference_compatible):
    model = _model(context_length=490, wavelet_levels=5, reference_compatible=reference_compatible)
    with torch.no_grad():
        out = model(torch.randn(2, frames, 12))
    assert out.last_hidden_state.shape == (2, frames, 12)
    assert out.pooler_output.shape == (2, 24)
    assert torch.isfinite(out.last_hidden_state).all() and torch.isfinite(out.pooler_output).all()


def test_hundred_thousand_frames_under_no_grad():
    model = _model()
    with torch.no_grad():
        out = model(torch.randn(1, 100_000, 12))
    assert out.last_hidden_state.shape == (1, 100_000, 12) and torch.isfinite(out.last_hidden_state).all()


def test_training_length_is_not_windowed():
    """At T = context_length the operator sees the whole sequence: a batch padded beyond it gives the same."""
    model = _model()
    x = torch.randn(1, 64, 12)
    padded = torch.cat([x, torch.randn(1, 40, 12)], dim=1)
    mask = torch.ones(1, 104, dtype=torch.long)
    mask[:, 64:] = 0
    with torch.no_grad():
        alone = model(x).last_hidden_state
        layer = model.layers[0]
        derivative = model.path_derivative(x, 0)
        direct = layer.output_projection(
            layer.operator(layer.velocity_field(x, derivative).transpose(1, 2)).transpose(1, 2)
        )
        in_batch = model(padded, attention_mask=mask).last_hidden_state
    assert torch.allclose(model(x, output_hidden_states=True).hidden_states[1], x + direct, atol=1e-6)
    assert torch.allclose(in_batch[:, :64], alone, atol=1e-5)
    assert torch.all(in_batch[:, 64:] == 0)


@pytest.mark.parametrize("reference_compatible", [False, True])
def test_padding_does_not_change_real_frames_or_pooling(reference_compatible):
    model = _model(reference_compatible=reference_compatible)
    lengths = [30, 200, 64]
    sequences = [torch.randn(1, n, 12) for n in lengths]
    batch = torch.zeros(3, 200, 12)
    mask = torch.zeros(3, 200, dtype=torch.long)
    for index, (sequence, length) in enumerate(zip(sequences, lengths)):
        batch[index, :length] = sequence[0]
        batch[index, length:] = 100.0  # garbage in the padding must not leak
        mask[index, :length] = 1
    with torch.no_grad():
        together = model(batch, attention_mask=mask)
        for index, (sequence, length) in enumerate(zip(sequences, lengths)):
            alone = model(sequence)
            assert torch.allclose(together.last_hidden_state[index, :length], alone.last_hidden_state[0], atol=1e-5)
            assert torch.allclose(together.pooler_output[index], alone.pooler_output[0], atol=1e-5)


def test_pooler_output_is_mean_and_std_over_time():
    model = _model()
    with torch.no_grad():
        out = model(torch.randn(2, 80, 12))
    hidden = out.last_hidden_state
    expected = torch.cat([hidden.mean(1), hidden.std(1, unbiased=False)], dim=-1)
    assert torch.allclose(out.pooler_output, expected, atol=1e-5)


def test_gradients_reach_every_parameter_with_clean_semantics():
    model = _model().train()
    x = torch.randn(2, 100, 12)
    out = model(x)
    (out.last_hidden_state.square().mean() + out.pooler_output.mean()).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_chunked_velocity_field_matches_one_chunk_including_gradients():
    x = torch.randn(2, 70, 12)
    results = []
    for budget in (12 * 6, 12 * 6 * 10_000):  # one frame per chunk vs everything at once
        model = _model(max_chunk_elements=budget, field_implementation="eager").train()  # the chunked path
        out = model(x).last_hidden_state
        out.square().mean().backward()
        results.append((out.detach(), model.layers[0].velocity_field.feature_expansion.weight.grad.clone()))
    assert model.layers[0].velocity_field.frames_per_chunk > 1
    assert torch.allclose(results[0][0], results[1][0], atol=1e-6)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)


@pytest.mark.parametrize("normalised", [False, True])
def test_layer_input_norm_makes_the_field_blind_to_a_constant_roi_offset(normalised):
    """With `layer_input_norm` the vector field reads each frame after a LayerNorm over ROIs: a constant added to
    every ROI and frame leaves the path derivative and the normalised frames, hence the layer's update, unchanged."""
    model = _model(layer_input_norm=normalised)
    hidden = torch.randn(2, 64, 12)
    derivative = model.path_derivative(hidden, 0)
    with torch.no_grad():
        plain, shifted = (model.layers[0](h, derivative, None, [64, 64]) for h in (hidden, hidden + 3.0))
    assert torch.allclose(plain, shifted, atol=1e-6) == normalised
    assert ("layers.0.input_norm.weight" in model.state_dict()) == normalised


def test_hidden_states_and_tuple_output():
    model = _model()
    with torch.no_grad():
        out = model(torch.randn(1, 64, 12), output_hidden_states=True)
        as_tuple = model(torch.randn(1, 64, 12), return_dict=False)
    assert len(out.hidden_states) == model.config.num_layers + 1
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2


def test_save_load_round_trip_is_bit_exact_and_rebuilds_filter_buffers(tmp_path):
    model = _model(wavelet="sym3")
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, MnemoDynModel)
    expected = torch.tensor(pywt.Wavelet("sym3").dec_lo[::-1], dtype=torch.float32)
    assert torch.allclose(loaded.layers[1].operator.analysis_filters[0, 0], expected)
    x = torch.randn(2, 150, 12)
    with torch.no_grad():
        assert torch.equal(model(x).last_hidden_state, loaded(x).last_hidden_state)


def test_parameter_count_of_the_released_configuration():
    from mnemodyn_hf import MnemoDynConfig

    with torch.device("meta"):
        model = MnemoDynModel(MnemoDynConfig())
    # reference_implementation.md §1.10: 148,237,012 for the released 450-ROI model
    assert sum(p.numel() for p in model.parameters()) == 148_237_012


@pytest.mark.parametrize(
    ("values", "mask", "message"),
    [
        (torch.randn(2, 64, 11), None, "has 11 ROIs on its last axis, the model expects 12"),
        (torch.randn(2, 12, 64), None, "axes look swapped"),
        (torch.randn(64, 12), None, "must be 3-D .* got 2-D"),
        (torch.randn(2, 3, 64, 12), None, "got 4-D .* parcellate it first"),
        (torch.randn(2, 1, 12), None, "needs at least 2 frames"),
        (torch.full((2, 64, 12), math.nan), None, "NaN/Inf"),
        (torch.randn(2, 64, 12), torch.ones(2, 63), "attention_mask must have shape"),
        (torch.randn(2, 64, 12), torch.full((2, 64), 2), "only 0 .* and 1"),
        (torch.randn(2, 64, 12), torch.cat([torch.zeros(2, 4), torch.ones(2, 60)], 1), "right padding"),
        (torch.randn(2, 64, 12), torch.cat([torch.ones(2, 1), torch.zeros(2, 63)], 1), "at least 2 real frames"),
    ],
)
def test_bad_inputs_raise_value_errors(values, mask, message):
    model = _model()
    model.config.validate_input_values = True
    with pytest.raises(ValueError, match=message):
        model(values, attention_mask=mask)


def test_inf_is_reported_with_its_position():
    x = torch.randn(1, 64, 12)
    x[0, 5, 3] = math.inf
    model = _model()
    model.config.validate_input_values = True
    with pytest.raises(ValueError, match="sample 0, frame 5, ROI 3"):
        model(x)


def test_value_scans_are_off_by_default_and_the_cheap_checks_stay():
    """Without `validate_input_values` the model skips the NaN scan and the per-entry mask checks (the extractor
    and collator guarantee them); shape, ROI count, length and a mask that is not 0/1 are still caught."""
    model = _model()
    assert not model.config.validate_input_values
    with torch.no_grad():
        assert torch.isnan(model(torch.full((1, 64, 12), math.nan)).last_hidden_state).all()
    with pytest.raises(ValueError, match="only 0 .* and 1"):
        model(torch.randn(2, 64, 12), attention_mask=torch.full((2, 64), 2))
    with pytest.raises(ValueError, match="has 11 ROIs"):
        model(torch.randn(2, 64, 11))


def test_new_models_start_near_the_identity():
    """Guards the initialisation (transformers skips parameter-less modules, so leaves must be initialised)."""
    model = _model(num_rois=94, latent_channels=32)
    projection = model.layers[0].output_projection
    assert abs(projection.weight.std().item() - model.config.initializer_range) < 0.005
    assert torch.all(projection.bias == 0) and torch.all(model.layers[0].velocity_field.feature_expansion.bias == 0)
    x = torch.randn(2, 64, 94)
    with torch.no_grad():
        update = model(x).last_hidden_state - x
    assert 0 < update.std() < 0.5 * x.std()


@pytest.mark.parametrize("length", [16, 31, 245])
def test_region_conv_is_a_same_padded_conv1d_per_time_block_with_its_gradients(length):
    from mnemodyn_hf.modeling_mnemodyn import MnemoDynRegionConv

    torch.manual_seed(0)
    conv = MnemoDynRegionConv(channels=6, kernel_size=5, num_regions=4).double()
    torch.nn.init.normal_(conv.weight)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(3, 6, length, dtype=torch.float64, requires_grad=True)
    block = -(-length // 4)
    padded = torch.nn.functional.pad(x, (0, 4 * block - length))
    expected = torch.cat(
        [
            torch.nn.functional.conv1d(
                padded[..., r * block : (r + 1) * block], conv.weight[r], conv.bias[r], padding="same"
            )
            for r in range(4)
        ],
        dim=-1,
    )[..., :length]
    got = conv(x)
    torch.testing.assert_close(got, expected)
    upstream = torch.randn_like(got)
    grads = torch.autograd.grad(got, (x, conv.weight, conv.bias), upstream)
    expected_grads = torch.autograd.grad(expected, (x, conv.weight, conv.bias), upstream)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad)
    assert grads[1].is_contiguous()  # the weight gradient in the weight's layout (no copy before the optimizer)
