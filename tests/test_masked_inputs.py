import pytest
import torch

from mnemodyn_hf import MnemoDynConfig
from mnemodyn_hf.masked_inputs import backbone_input
from mnemodyn_hf.modeling_pretraining import MnemoDynForPreTraining, hidden_entry_masks
from tests.conftest import tiny_config


def _masked(layout: str, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(2, 64, 6, generator=generator) + 2.0  # in [2, 3]: away from the mask token 0
    hidden = hidden_entry_masks(torch.tensor([1, 2]), torch.tensor([64, 64]), 64, 6, layout, 0.5, 8)
    return values, torch.where(hidden, torch.zeros_like(values), values), (~hidden).float()


def test_the_token_input_is_the_corrupted_input():
    _, corrupted, visible = _masked("per_roi")
    assert torch.equal(backbone_input(corrupted, visible, "token"), corrupted)


@pytest.mark.parametrize("layout", ["per_roi", "whole_frame", "forecast"])
def test_the_interpolated_path_runs_through_the_observed_values_only(layout):
    values, corrupted, visible = _masked(layout)
    path = backbone_input(corrupted, visible, "interpolate")
    shown = visible.bool()
    assert torch.equal(path[shown], values[shown])
    # no hidden entry is left at the mask token: each lies between observed values of its ROI
    assert (path >= values.amin(1, keepdim=True) - 1e-6).all() and (path <= values.amax(1, keepdim=True) + 1e-6).all()
    if layout == "forecast":  # the last observed frame is held to the window's end
        last = int(shown[0, :, 0].nonzero().max())
        assert torch.allclose(path[0, last:], values[0, last].expand_as(path[0, last:]))


def test_the_mask_embedding_marks_hidden_entries_learns_and_reloads(tmp_path):
    config = tiny_config(num_rois=6, mask_input="interpolate_embedding", mask_span_frames=4, mask_layout="mixed")
    model = MnemoDynForPreTraining(config)
    assert model.mask_embedding.shape == (6,) and not model.mask_embedding.any()
    values, corrupted, visible = _masked("whole_frame")
    with torch.no_grad():
        model.mask_embedding.fill_(0.5)
    marked = backbone_input(corrupted, visible, config.mask_input, model.mask_embedding)
    plain = backbone_input(corrupted, visible, "interpolate")
    assert torch.allclose((marked - plain)[~visible.bool()], torch.tensor(0.5))
    assert torch.equal(marked[visible.bool()], plain[visible.bool()])
    out = model(torch.randn(2, 64, 6), corruption_seeds=torch.tensor([3, 4]))
    out.loss.backward()
    assert model.mask_embedding.grad is not None and model.mask_embedding.grad.abs().sum() > 0
    model.save_pretrained(tmp_path)
    reloaded = MnemoDynForPreTraining.from_pretrained(tmp_path)
    assert reloaded.config.mask_input == "interpolate_embedding"
    assert torch.equal(reloaded.mask_embedding, model.mask_embedding)


def test_a_mask_aware_model_reads_the_interpolated_path_and_unknown_inputs_are_refused():
    torch.manual_seed(0)
    aware = MnemoDynForPreTraining(tiny_config(num_rois=6, mask_input="interpolate", mask_span_frames=4))
    _, corrupted, visible = _masked("per_roi")
    with torch.no_grad():
        expected = aware.mnemodyn(backbone_input(corrupted, visible, "interpolate")).last_hidden_state
        _, hidden_states = aware.reconstruct(corrupted, visible, output_hidden_states=True)
    assert torch.allclose(hidden_states[-1], expected, atol=1e-6)
    with pytest.raises(ValueError, match="mask_input"):
        MnemoDynConfig(mask_input="zeros")
