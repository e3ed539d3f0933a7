import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining

from mnemodyn_hf import MnemoDynForPreTraining, MnemoDynModel
from mnemodyn_hf.modeling_pretraining import (
    MASK_VALUE,
    MnemoDynPerRoiHead,
    gaussian_noise,
    hidden_entry_masks,
    span_masks,
)

from .conftest import tiny_config

FRAMES = 64


def pretraining_model(objective: str = "masked", **overrides) -> MnemoDynForPreTraining:
    torch.manual_seed(0)
    return MnemoDynForPreTraining(tiny_config(pretraining_objective=objective, **overrides)).eval()


def signals(batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, FRAMES, 12, generator=torch.Generator().manual_seed(1))


def test_span_masks_hide_the_configured_ratio_in_spans_and_depend_only_on_the_seed():
    masks = span_masks(torch.arange(200), 128, 12, mask_ratio=0.7, span=10)
    assert masks.shape == (200, 128, 12) and masks.dtype == torch.bool
    assert abs(masks.float().mean().item() - 0.7) < 0.01
    assert abs(masks[:, :10].float().mean().item() - 0.7) < 0.03  # no edge effect at the window start
    # hidden runs are at least a span long, except where cut by the window's edges
    run = masks[0, :, 0].int()
    starts = torch.nonzero(torch.diff(run) == 1).flatten() + 1
    stops = torch.nonzero(torch.diff(run) == -1).flatten() + 1
    for start in starts:
        later = stops[stops > start]
        assert len(later) == 0 or later[0] - start >= 10
    in_a_batch = span_masks(torch.tensor([7, 3]), 128, 12, 0.7, 10)
    assert torch.equal(in_a_batch[1], span_masks(torch.tensor([3]), 128, 12, 0.7, 10)[0])
    assert not torch.equal(masks[0], masks[1])


def test_corruptions_are_per_sample_so_split_batches_reproduce_the_whole_batch():
    """The DDP property: a batch split over two processes sees the same masks and averages to the same loss."""
    for objective in ("masked", "denoising", "jepa"):
        model = pretraining_model(objective)
        values, seeds = signals(4), torch.tensor([11, 12, 13, 14])
        whole = model(values, corruption_seeds=seeds)
        halves = [model(values[part], corruption_seeds=seeds[part]) for part in (slice(0, 2), slice(2, 4))]
        assert torch.equal(whole.scored_mask, torch.cat([half.scored_mask for half in halves]))
        torch.testing.assert_close(whole.loss, (halves[0].loss + halves[1].loss) / 2, rtol=1e-5, atol=1e-7)


def test_masked_objective_scores_only_hidden_entries_of_real_frames():
    model = pretraining_model("masked")
    values = signals(2)
    attention_mask = torch.ones(2, FRAMES, dtype=torch.long)
    attention_mask[1, 40:] = 0
    out = model(values * attention_mask[..., None], attention_mask, corruption_seeds=torch.tensor([5, 6]))
    hidden = span_masks(torch.tensor([5, 6]), FRAMES, 12, 0.7, 30)
    assert torch.equal(out.scored_mask, hidden & attention_mask[..., None].bool())
    assert not out.scored_mask[1, 40:].any()
    expected = torch.stack(
        [((out.reconstruction[i] - out.target[i]) ** 2)[out.scored_mask[i]].mean() for i in range(2)]
    ).mean()
    torch.testing.assert_close(out.loss, expected)
    assert out.loss.requires_grad and not out.mse.requires_grad


def copying_model(objective: str = "masked") -> MnemoDynForPreTraining:
    """A model whose output is its input: every residual update and the head's update are zero."""
    model = pretraining_model(objective)
    with torch.no_grad():
        for layer in model.mnemodyn.layers:
            layer.output_projection.weight.zero_()
            layer.output_projection.bias.zero_()
        model.head.output_projection.weight.zero_()
        model.head.output_projection.bias.zero_()
    return model


def test_identity_trap_is_closed_copying_the_masked_input_scores_no_credit():
    model = copying_model("masked")
    values = signals(3)
    out = model(values, corruption_seeds=torch.tensor([1, 2, 3]))
    # the copy reproduces every visible entry exactly, and only the mask token where it is scored
    torch.testing.assert_close(out.reconstruction[~out.scored_mask], values[~out.scored_mask])
    assert torch.all(out.reconstruction[out.scored_mask] == MASK_VALUE)
    assert out.r_squared.item() <= 0.0
    per_sample = torch.stack([(values[i][out.scored_mask[i]] ** 2).mean() for i in range(3)]).mean()
    torch.testing.assert_close(out.loss, per_sample)  # the loss of predicting the token, nothing less


def test_denoising_scores_every_real_entry_against_the_clean_signal():
    model = copying_model("denoising")
    values, seeds = signals(2), torch.tensor([8, 9])
    out = model(values, corruption_seeds=seeds)
    assert out.scored_mask.all()
    noisy = values + model.config.noise_std * gaussian_noise(seeds, FRAMES, 12)
    torch.testing.assert_close(out.reconstruction, noisy)  # the copying model returns the noisy input
    torch.testing.assert_close(out.target, values)
    torch.testing.assert_close(out.loss, ((noisy - values) ** 2).mean())


def test_jepa_has_a_stop_gradient_ema_target_encoder():
    model = pretraining_model("jepa", ema_decay=0.9).train()
    for target, online in zip(model.target_encoder.parameters(), model.mnemodyn.parameters()):
        assert torch.equal(target, online) and not target.requires_grad
    out = model(signals(2), corruption_seeds=torch.tensor([1, 2]))
    assert not out.target.requires_grad
    out.loss.backward()
    assert all(parameter.grad is None for parameter in model.target_encoder.parameters())
    assert any(parameter.grad is not None for parameter in model.mnemodyn.parameters())
    before = [parameter.clone() for parameter in model.target_encoder.parameters()]
    with torch.no_grad():
        for parameter in model.mnemodyn.parameters():
            parameter.add_(1.0)
    model.update_target_encoder()
    for old, new in zip(before, model.target_encoder.parameters()):
        torch.testing.assert_close(new, old + 0.1)  # (1 - decay) of the way to the online weights


def test_update_target_encoder_names_the_objective_when_there_is_none():
    with pytest.raises(ValueError, match="objective is 'masked'"):
        pretraining_model("masked").update_target_encoder()


def test_save_and_load_with_auto_classes(tmp_path):
    model = pretraining_model("jepa")
    model.save_pretrained(tmp_path)
    loaded = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert isinstance(loaded, MnemoDynForPreTraining)
    values, seeds = signals(2), torch.tensor([1, 2])
    torch.testing.assert_close(loaded(values, corruption_seeds=seeds).loss, model(values, corruption_seeds=seeds).loss)
    backbone = AutoModel.from_pretrained(tmp_path)
    assert isinstance(backbone, MnemoDynModel)
    for name, parameter in backbone.state_dict().items():
        assert torch.equal(parameter, model.mnemodyn.state_dict()[name])


def test_bad_corruption_seeds_raise():
    with pytest.raises(ValueError, match="corruption_seeds has 1 seeds for a batch of 2"):
        pretraining_model()(signals(2), corruption_seeds=torch.tensor([1]))


def test_a_bf16_autocast_training_step_runs_with_an_fp32_loss():
    """What `--mixed-precision bf16` does on a GPU, on the CPU: forward under autocast, backward outside it."""
    model = pretraining_model("masked").train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(signals(2), corruption_seeds=torch.tensor([1, 2]))
    assert out.loss.dtype == torch.float32
    out.loss.backward()
    gradients = [parameter.grad for parameter in model.parameters() if parameter.grad is not None]
    assert gradients and all(torch.isfinite(gradient).all() for gradient in gradients)


@pytest.mark.parametrize("layout", ["per_roi", "whole_frame", "forecast", "mixed"])
def test_mask_layouts_hide_what_they_name_and_never_padding(layout):
    seeds = torch.arange(6)
    lengths = torch.tensor([64, 64, 40, 64, 50, 64])
    masks = hidden_entry_masks(seeds, lengths, 64, 12, layout, 0.5, 8)
    assert masks.shape == (6, 64, 12)
    for sample, length in enumerate(lengths.tolist()):
        assert not masks[sample, length:].any()  # padding is never scored
        drawn = ("per_roi", "whole_frame", "forecast")[sample % 3] if layout == "mixed" else layout
        frames_hidden = masks[sample].any(dim=1)
        if drawn in ("whole_frame", "forecast"):  # a hidden frame hides every ROI
            assert torch.equal(masks[sample][frames_hidden], torch.ones_like(masks[sample][frames_hidden]))
        if drawn == "forecast":
            assert torch.equal(torch.nonzero(frames_hidden).flatten(), torch.arange(length - 8, length))
        if drawn == "per_roi":
            assert not masks[sample].all(dim=1).all()  # ROIs are masked independently


def test_the_per_roi_head_leaves_the_reconstruction_to_the_backbone():
    """With the per-ROI head, a model whose backbone adds nothing (zero output projections) predicts a constant
    per ROI on hidden entries: R^2 <= 0, so whatever R^2 a trained model reaches is the backbone's."""
    config = tiny_config(reconstruction_head="per_roi", mask_layout="whole_frame")
    model = MnemoDynForPreTraining(config).eval()
    assert isinstance(model.head, MnemoDynPerRoiHead)
    for layer in model.mnemodyn.layers:
        torch.nn.init.zeros_(layer.output_projection.weight)
        torch.nn.init.zeros_(layer.output_projection.bias)
    with torch.no_grad():
        out = model(torch.randn(4, 64, config.num_rois), corruption_seeds=torch.arange(4))
    assert out.r_squared <= 0.0
    hidden = out.reconstruction[out.scored_mask]
    assert torch.allclose(hidden, torch.zeros_like(hidden))  # the mask token, scaled by 1 and shifted by 0


def test_bypassing_the_backbone_feeds_the_corrupted_input_to_the_head():
    """The ablation of the backbone's share: with `bypass_backbone` the head reads the masked input itself."""
    model = MnemoDynForPreTraining(tiny_config(bypass_backbone=True)).eval()
    values = torch.randn(2, 64, model.config.num_rois)
    with torch.no_grad():
        out = model(values, corruption_seeds=torch.tensor([3, 4]))
        corrupted = torch.where(out.scored_mask, torch.zeros_like(values), values)
        expected = model.head(corrupted, (~out.scored_mask).float())
    torch.testing.assert_close(out.reconstruction, expected)
