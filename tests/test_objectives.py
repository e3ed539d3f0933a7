import pytest
import torch

from mnemodyn_hf import MnemoDynForPreTraining
from mnemodyn_hf.objectives import (
    OBJECTIVES,
    Corruption,
    Objective,
    scored_mse,
)
from mnemodyn_hf.training.arguments import PretrainingArguments, parse_arguments

from .conftest import tiny_config

#: (config overrides, loss, gradient norm) of one forward and backward pass of `forward_and_backward`, computed with
#: the objectives as if/else branches of `MnemoDynForPreTraining.forward`, before they became `OBJECTIVES` classes.
BEFORE_THE_REGISTRY = [
    ({"pretraining_objective": "masked"}, 1.045028567314148, 0.18268054723739624),
    ({"mask_layout": "mixed", "mask_span_frames": 8}, 1.0229016542434692, 0.20363949239253998),
    (
        {"mask_input": "interpolate_embedding", "mask_layout": "whole_frame", "mask_span_frames": 8},
        1.7416139841079712,
        0.3002353012561798,
    ),
    (
        {"reconstruction_head": "per_roi", "mask_layout": "forecast", "mask_span_frames": 8},
        1.0042846202850342,
        0.24334831535816193,
    ),
    ({"bypass_backbone": True}, 1.041210412979126, 0.10660897195339203),
    ({"pretraining_objective": "denoising"}, 0.25789695978164673, 0.10989072173833847),
    ({"pretraining_objective": "jepa", "ema_decay": 0.9}, 1.0438189506530762, 0.17961329221725464),
]


def padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four windows (64 frames, 12 ROIs), two of them right-padded, and their corruption seeds."""
    values = torch.randn(4, 64, 12, generator=torch.Generator().manual_seed(1))
    attention_mask = torch.ones(4, 64, dtype=torch.long)
    attention_mask[1, 40:] = 0
    attention_mask[3, 50:] = 0
    return values * attention_mask[..., None], attention_mask, torch.tensor([11, 12, 13, 14])


def forward_and_backward(**overrides) -> tuple[MnemoDynForPreTraining, torch.Tensor]:
    torch.manual_seed(0)
    model = MnemoDynForPreTraining(tiny_config(**overrides)).train()
    values, attention_mask, seeds = padded_batch()
    loss = model(values, attention_mask, corruption_seeds=seeds).loss
    loss.backward()
    return model, loss


@pytest.mark.parametrize(("overrides", "loss", "grad_norm"), BEFORE_THE_REGISTRY)
def test_every_objective_gives_the_losses_and_gradients_it_gave_before_the_registry(overrides, loss, grad_norm):
    model, computed = forward_and_backward(**overrides)
    gradients = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    torch.testing.assert_close(computed.item(), loss, rtol=1e-5, atol=0)
    torch.testing.assert_close(gradients.norm().item(), grad_norm, rtol=1e-5, atol=0)


def test_the_registry_names_every_objective_the_config_accepts():
    assert set(OBJECTIVES) == {"masked", "denoising", "jepa"}
    assert all(issubclass(cls, Objective) for cls in OBJECTIVES.values())
    for name, cls in OBJECTIVES.items():
        assert type(MnemoDynForPreTraining(tiny_config(pretraining_objective=name)).objective) is cls
    with pytest.raises(ValueError, match="pretraining_objective='toy' is not one of"):
        tiny_config(pretraining_objective="toy")


class ShiftObjective(Objective):
    """A toy objective: predict every real frame from the input delayed by one frame; counts its optimizer steps."""

    baselines = ("noisy_input",)
    task_type = "forecasting"

    def corrupt(self, clean: torch.Tensor, real: torch.Tensor, seeds: torch.Tensor) -> Corruption:
        delayed = torch.cat([torch.zeros_like(clean[:, :1]), clean[:, :-1]], dim=1) * real
        return Corruption(corrupted=delayed, visible=torch.ones_like(clean), scored=real.expand_as(clean))

    def after_optimizer_step(self, model: torch.nn.Module) -> None:
        model.shift_steps = getattr(model, "shift_steps", 0) + 1


def test_a_new_objective_is_one_class_and_one_registry_line(monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "shift", ShiftObjective)  # the registry line
    PretrainingArguments(output_dir="unused", objective="shift")  # `mnemodyn pretrain --objective shift` accepts it
    torch.manual_seed(0)
    model = MnemoDynForPreTraining(tiny_config(pretraining_objective="shift")).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    values, attention_mask, seeds = padded_batch()
    output = model(values, attention_mask, corruption_seeds=seeds)
    assert torch.equal(output.scored_mask, attention_mask[..., None].bool().expand_as(values))
    output.loss.backward()
    optimizer.step()
    model.after_optimizer_step()  # what the training loop calls once per optimizer step
    assert model.shift_steps == 1
    assert model(values, attention_mask, corruption_seeds=seeds).loss < output.loss


def test_the_consistency_term_is_off_at_weight_0_and_reshapes_only_the_backbone_gradient():
    _, reference = forward_and_backward()
    unweighted, loss_0 = forward_and_backward(consistency_weight=0.0)
    weighted, loss_1 = forward_and_backward(consistency_weight=1.0)
    assert torch.equal(loss_0, reference)  # weight 0: the objective of before, bit for bit
    values, attention_mask, seeds = padded_batch()
    with torch.no_grad():  # the term by hand: backbone outputs on the corrupted and the clean input, real entries
        corruption = weighted.objective.corrupt(values, attention_mask[..., None].bool(), seeds)
        h_masked = weighted.mnemodyn(corruption.corrupted, attention_mask).last_hidden_state
        h_clean = weighted.mnemodyn(values, attention_mask).last_hidden_state
        per_sample = [((h_masked - h_clean)[i, : int(n)] ** 2).mean() for i, n in enumerate(attention_mask.sum(1))]
    torch.testing.assert_close(loss_1 - loss_0, torch.stack(per_sample).mean())
    gradients = {name: p.grad for name, p in weighted.named_parameters() if p.grad is not None}
    changed = {name for name, p in unweighted.named_parameters() if not torch.equal(gradients[name], p.grad)}
    assert changed and all(name.startswith("mnemodyn.") for name in changed)  # the head's gradient is untouched


def test_the_consistency_term_is_zero_when_nothing_is_hidden():
    torch.manual_seed(0)
    model = MnemoDynForPreTraining(tiny_config(consistency_weight=1.0, mask_ratio=1e-6)).train()
    values, attention_mask, seeds = padded_batch()
    output = model(values, attention_mask, corruption_seeds=seeds)
    # nothing scored and the backbone reads the clean input twice: the loss, 0 + 1.0 * the term, is exactly 0
    assert not output.scored_mask.any() and output.loss.item() == 0.0


def test_the_pretrain_flag_sets_the_weight():
    assert parse_arguments(["--output-dir", "run", "--consistency-weight", "1"]).consistency_weight == 1.0
    assert parse_arguments(["--output-dir", "run"]).consistency_weight == 0.0


def test_consistency_needs_the_masked_objective_and_a_backbone():
    for overrides in ({"consistency_weight": -1.0}, {"pretraining_objective": "denoising", "consistency_weight": 1.0}):
        with pytest.raises(ValueError, match="consistency_weight"):
            tiny_config(**overrides)
    with pytest.raises(ValueError, match="consistency_weight"):
        tiny_config(bypass_backbone=True, consistency_weight=0.5)


def test_scored_mse_averages_each_samples_mean_over_its_scored_entries():
    prediction, target = torch.zeros(2, 3, 1), torch.tensor([[[1.0], [3.0], [5.0]], [[2.0], [0.0], [0.0]]])
    scored = torch.tensor([[[True], [True], [False]], [[True], [False], [False]]])
    assert scored_mse(prediction, target, scored).item() == pytest.approx(((1 + 9) / 2 + 4) / 2)
    assert scored_mse(prediction, target, scored & False).item() == 0.0
