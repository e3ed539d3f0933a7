import torch
from transformers import AutoModel

from mnemodyn_hf.demo import run_demo


def test_demo_runs_on_real_data_and_its_model_reloads(tmp_path):
    summary = run_demo(tmp_path / "demo")
    assert summary["reload_identical"] and summary["last_hidden_state"] == (7, 1200, 94)
    assert summary["cifti_450_roi_input"] == (60, 450) and summary["cifti_embedding"] == (1, 900)
    assert (tmp_path / "demo" / "demo_backbone.png").stat().st_size > 10_000
    model = AutoModel.from_pretrained(tmp_path / "demo")
    assert model.config.num_rois == 94 and torch.isfinite(next(model.parameters())).all()
