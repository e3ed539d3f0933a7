import pytest
import torch

from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
from mnemodyn_hf.context_mixing import MnemoDynContextMixer
from tests.conftest import tiny_config


def _mixer(**overrides) -> MnemoDynContextMixer:
    torch.manual_seed(0)
    return MnemoDynContextMixer(tiny_config(context_components=3, **overrides))


def test_the_update_is_the_sequence_moments_applied_to_each_frame():
    mixer = _mixer()
    frames = torch.randn(2, 30, 12)
    p = frames @ mixer.components.weight.T
    moments = torch.einsum("btk,btl->bkl", p, p) / 30
    expected = torch.einsum("btk,bkl->btl", p, moments) @ mixer.output_projection.weight.T
    torch.testing.assert_close(mixer(frames, None), expected)


def test_a_frame_update_depends_on_other_frames_and_not_on_padding():
    """The branch reads the whole sequence (a frame-wise layer would not), and padded frames are left out."""
    mixer = _mixer()
    frames = torch.randn(1, 40, 12)
    changed = frames.clone()
    changed[0, 20:] = torch.randn(20, 12)
    assert not torch.allclose(mixer(frames, None)[0, :20], mixer(changed, None)[0, :20])
    mask = torch.ones(1, 40)
    mask[0, 20:] = 0
    torch.testing.assert_close(mixer(frames, mask)[0, :20], mixer(changed, mask)[0, :20])
    torch.testing.assert_close(mixer(frames, mask)[:, :20], mixer(frames[:, :20], None))


def test_the_model_carries_the_branch_only_when_configured_and_starts_near_the_identity():
    torch.manual_seed(0)
    plain = MnemoDynModel(tiny_config())
    torch.manual_seed(0)
    mixed = MnemoDynModel(tiny_config(context_components=4)).eval()
    assert not any("context_mixer" in name for name in plain.state_dict())
    assert {name for name in mixed.state_dict() if "context_mixer" in name} >= {
        "layers.0.context_mixer.components.weight",
        "layers.0.context_mixer.output_projection.weight",
    }
    x = torch.randn(2, 64, 12)
    with torch.no_grad():
        branch = mixed.layers[0].context_mixer(x, None)
        out = mixed(x).last_hidden_state
    assert 0 < branch.abs().mean() < 0.2 * x.abs().mean()  # the branch starts small, not absent
    assert (out - x).abs().mean() < 0.2 * x.abs().mean()
    loss = mixed.train()(x).last_hidden_state.square().mean()
    loss.backward()
    assert mixed.layers[0].context_mixer.components.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bad_context_components_are_refused(value):
    with pytest.raises(ValueError, match="context_components must be a positive integer or None"):
        MnemoDynConfig(context_components=value)
