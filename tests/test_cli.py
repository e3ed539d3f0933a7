import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from mnemodyn_hf.cli import build_parser, main
from tests.conftest import REFERENCE_PARITY


def test_convert_subcommand_writes_a_folder_that_reproduces_the_reference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["convert", str(REFERENCE_PARITY / "ref_small_t64.ckpt"), "mnemodyn-ukb", "--repetition-time", "0.735"])
    model = AutoModel.from_pretrained("mnemodyn-ukb").eval()  # a bare name resolves to the local folder
    assert model.config.repetition_time == 0.735
    io = load_file(REFERENCE_PARITY / "ref_small_t64_io.safetensors")
    with torch.no_grad():
        assert (model(io["input"]).last_hidden_state - io["output"]).abs().max() < 1e-4


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert "demo" in text and "convert" in text


def test_finetune_subcommand_reports_model_and_baseline(tmp_path, capsys):
    from mnemodyn_hf import MnemoDynConfig, MnemoDynModel

    backbone = tmp_path / "backbone"
    MnemoDynModel(MnemoDynConfig(num_rois=122, num_layers=1, projection_size=8, latent_channels=8, context_length=32,
                                 wavelet_levels=3, repetition_time=2.0)).save_pretrained(backbone)  # fmt: skip
    (backbone / "robust_scaling.json").write_text(json.dumps({"roi_median": [0.0] * 122, "roi_iqr": [2.0] * 122}))
    main(["finetune", str(backbone), "--output-dir", str(tmp_path / "out"), "--subjects", "8", "--seeds", "0",
          "--epochs", "1"])  # fmt: skip
    text = capsys.readouterr().out
    assert "normalisation: robust scaling with" in text  # the backbone's pretraining statistics are used
    assert "model" in text and "fc_baseline" in text and "roc_auc" in text
    assert (tmp_path / "out" / "downstream_report.json").is_file()
