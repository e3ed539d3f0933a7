"""The `mnemodyn-ukb` usage snippets of the README and of the model card run as written on a converted folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel
from mnemodyn_hf.hub import prepare_hub_folder
from mnemodyn_hf.hub.convert import converted_card_facts

REPO = Path(__file__).resolve().parents[2]


def python_blocks(markdown: str, containing: str) -> list[str]:
    return [block for block in re.findall(r"```python\n(.*?)```", markdown, re.S) if containing in block]


@pytest.fixture()
def converted_ukb_folder(tmp_path, real_dtseries, monkeypatch) -> Path:
    """What `mnemodyn convert` writes for the authors' 450-ROI weights (a small stand-in with the same
    configuration switches: reference_compatible, 450 ROIs, TR 0.735 s; the 1.78 GB checkpoint is not shipped):
    the weights through save_pretrained, then `prepare_hub_folder` with the converter's card facts. The working
    folder holds two real CIFTI runs named as in the snippets."""
    folder = tmp_path / "mnemodyn-ukb"
    torch.manual_seed(0)
    config = MnemoDynConfig(num_layers=1, projection_size=16, latent_channels=8, reference_compatible=True)
    MnemoDynModel(config).save_pretrained(folder)
    prepare_hub_folder(folder, converted_card_facts("model.ckpt", folder))
    for name in ("sub-01_bold.dtseries.nii", "sub-02_bold.dtseries.nii"):
        shutil.copyfile(real_dtseries, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return folder


def test_a_converted_folder_ships_an_extractor_that_does_not_normalise_until_fitted(converted_ukb_folder):
    extractor = MnemoDynFeatureExtractor.from_pretrained(converted_ukb_folder)
    assert extractor.roi_median is None and not extractor.do_normalize and extractor.feature_size == 450
    with pytest.raises(ValueError, match="do_normalize=True but no robust-scaling statistics"):
        MnemoDynFeatureExtractor(do_normalize=True).save_pretrained(converted_ukb_folder / "again")


@pytest.mark.filterwarnings("ignore:.*constant over the corpus:UserWarning")  # the stand-in run's subcortex is 0
def test_the_readme_snippet_runs_as_written(converted_ukb_folder):
    (snippet,) = python_blocks((REPO / "README.md").read_text(), 'AutoFeatureExtractor.from_pretrained("mnemodyn-ukb")')
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["inputs"]["input_values"].shape[-1] == 450
    assert namespace["out"].pooler_output.shape == (1, 900)


@pytest.mark.filterwarnings("ignore:.*constant over the corpus:UserWarning")
def test_the_model_card_snippet_runs_as_written(converted_ukb_folder):
    card = (converted_ukb_folder / "README.md").read_text()
    (snippet,) = python_blocks(card, "AutoFeatureExtractor.from_pretrained(")
    assert "extractor.fit(" in snippet  # no statistics ship with the authors' weights
    committed = python_blocks((REPO / "model_cards" / "mnemodyn-ukb" / "README.md").read_text(), "extractor.fit(")
    assert committed and committed[0].replace("<namespace>/", "") == snippet.replace("<namespace>/", "")
    namespace: dict = {}
    exec(compile(snippet.replace("<namespace>/mnemodyn-ukb", "mnemodyn-ukb"), "README.md", "exec"), namespace)
    assert namespace["embedding"].shape == (1, 900) and torch.isfinite(namespace["embedding"]).all()
