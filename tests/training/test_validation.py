import pytest
import torch
from accelerate import Accelerator

from mnemodyn_hf import MnemoDynForPreTraining
from mnemodyn_hf.objectives import OBJECTIVES
from mnemodyn_hf.training.validation import validate
from tests.conftest import tiny_config
from tests.test_objectives import ShiftObjective

#: `validate` of a fresh model on `batches()`, computed before the objectives became `OBJECTIVES` classes.
BEFORE_THE_REGISTRY = {
    "masked": {
        "val/loss": 1.1013466348625929,
        "val/mse": 1.0803861057146216,
        "val/r2_model": -0.003953891593504233,
        "val/r2_roi_mean": -0.08888499234840208,
        "val/r2_interpolation": -0.6472556797700719,
    },
    "denoising": {
        "val/loss": 0.2526053585490842,
        "val/mse": 0.25423250703645967,
        "val/r2_model": 0.7597044874745584,
        "val/r2_noisy_input": 0.7618216942357354,
    },
    "jepa": {"val/loss": 1.0996486342774117, "val/mse": 1.0791489217580381, "val/r2_model": -0.0021070032556236296},
}


def batches() -> list[dict[str, torch.Tensor]]:
    """Two batches of two windows (64 frames, 12 ROIs), one window right-padded."""
    values = torch.randn(4, 64, 12, generator=torch.Generator().manual_seed(1))
    attention_mask = torch.ones(4, 64, dtype=torch.long)
    attention_mask[1, 40:] = 0
    values = values * attention_mask[..., None]
    return [
        {"input_values": values[part], "attention_mask": attention_mask[part], "corruption_seeds": seeds}
        for part, seeds in ((slice(0, 2), torch.tensor([1, 2])), (slice(2, 4), torch.tensor([3, 4])))
    ]


@pytest.mark.parametrize("objective", sorted(BEFORE_THE_REGISTRY))
def test_validation_scores_the_model_and_its_objectives_baselines_as_before_the_registry(objective):
    torch.manual_seed(0)
    model = MnemoDynForPreTraining(tiny_config(pretraining_objective=objective))
    metrics = validate(model, batches(), Accelerator(cpu=True))
    expected = BEFORE_THE_REGISTRY[objective]
    assert list(metrics) == list(expected)
    assert metrics == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_validation_reports_the_baselines_a_new_objective_names(monkeypatch):
    monkeypatch.setitem(OBJECTIVES, "shift", ShiftObjective)
    torch.manual_seed(0)
    model = MnemoDynForPreTraining(tiny_config(pretraining_objective="shift"))
    metrics = validate(model, batches(), Accelerator(cpu=True))
    assert set(metrics) == {"val/loss", "val/mse", "val/r2_model", "val/r2_noisy_input"}
