import torch

from benchmarks.backbone_probe import ablated, update_norms
from mnemodyn_hf.modeling_pretraining import MnemoDynForPreTraining
from tests.conftest import tiny_config


def test_the_ablations_remove_what_they_name_and_are_undone_on_exit():
    torch.manual_seed(0)
    model = MnemoDynForPreTraining(tiny_config(num_rois=6)).eval()
    values = torch.randn(2, 32, 6)
    with torch.no_grad():
        intact = model.mnemodyn(values).last_hidden_state
        with ablated(model, "backbone"):
            assert torch.allclose(model.mnemodyn(values).last_hidden_state, values)  # every update is zero
            assert update_norms(model, values) == [0.0] * model.config.num_layers
        with ablated(model, "operator"):
            without_operator = model.mnemodyn(values).last_hidden_state
        assert not torch.allclose(without_operator, intact) and not torch.allclose(without_operator, values)
        assert torch.equal(model.mnemodyn(values).last_hidden_state, intact)  # restored
    assert all(value > 0 for value in update_norms(model, values))
