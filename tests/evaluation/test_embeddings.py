"""`backbone_inputs`: runs reach the backbone through its own feature extractor, resampled once, scaled as stated."""

from __future__ import annotations

import numpy as np
import pytest

from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor
from mnemodyn_hf.evaluation import embeddings
from mnemodyn_hf.evaluation.embeddings import backbone_inputs
from mnemodyn_hf.preprocessing import temporal_resampling


@pytest.fixture(scope="module")
def runs(abide_small):
    rows = abide_small.with_format("numpy").select(range(4))
    return list(rows["bold"]), [float(tr) for tr in rows["tr"]]


def test_runs_are_resampled_once_and_scaled_by_the_folders_extractor(runs, backbone_200, monkeypatch):
    series, trs = runs
    calls = []
    resample = temporal_resampling.resample_frames

    def counting(values, source, target):
        calls.append((len(values), source, target))
        return resample(values, source, target)

    monkeypatch.setattr("mnemodyn_hf.feature_extraction_mnemodyn.resample_frames", counting)
    config = MnemoDynConfig.from_pretrained(backbone_200)
    prepared = backbone_inputs(series, trs, backbone_200, config)
    assert [(source, target) for _, source, target in calls] == [(tr, 2.0) for tr in trs]  # one pass per run
    extractor = MnemoDynFeatureExtractor.from_pretrained(backbone_200)
    for bold, tr, got in zip(series, trs, prepared.series, strict=True):
        np.testing.assert_array_equal(got, extractor(bold, repetition_time=tr)["input_values"][0])
    assert prepared.normalization.startswith("robust scaling") and prepared.resampled_runs == 4


def test_a_backbone_without_statistics_is_refused_unless_zscoring_is_chosen(runs, tmp_path, backbone_200):
    series, trs = runs
    config = MnemoDynConfig.from_pretrained(backbone_200)
    config.save_pretrained(tmp_path)  # a folder with a config and no feature extractor
    with pytest.raises(ValueError, match=r"no normalization statistics.*--normalization per-run-zscore"):
        backbone_inputs(series, trs, tmp_path, config)
    prepared = backbone_inputs(series, trs, tmp_path, config, normalization="per-run-zscore")
    assert "chosen explicitly" in prepared.normalization
    np.testing.assert_allclose(prepared.series[0].mean(axis=0), 0, atol=1e-5)
    assert embeddings.NORMALIZATION_NOTES["per-run-zscore"] == prepared.normalization


def test_an_extractor_at_another_tr_than_the_backbone_is_refused(runs, backbone_200, tmp_path):
    import shutil

    folder = shutil.copytree(backbone_200, tmp_path / "model")
    extractor = MnemoDynFeatureExtractor.from_pretrained(folder)
    extractor.target_repetition_time = 1.0
    extractor.save_pretrained(folder)
    with pytest.raises(ValueError, match=r"resamples to TR 1 s but .* pretrained at TR 2 s"):
        backbone_inputs(*runs, folder, MnemoDynConfig.from_pretrained(folder))
