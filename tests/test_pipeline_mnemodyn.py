"""`pipeline("fmri-embedding")` on real data: the same embeddings as the extractor + backbone by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import pipeline

from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel
from mnemodyn_hf.evaluation import embed


@pytest.fixture()
def folder(tmp_path, real_dtseries):
    torch.manual_seed(0)
    model = MnemoDynModel(MnemoDynConfig(num_layers=1, projection_size=8, latent_channels=8)).eval()
    model.save_pretrained(tmp_path / "model")
    with pytest.warns(UserWarning, match="constant over the corpus"):  # the stand-in run's subcortex is 0
        MnemoDynFeatureExtractor().fit([real_dtseries], repetition_time=1.4).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_the_pipeline_embeds_files_and_arrays_like_the_model_by_hand(folder, real_dtseries):
    embedder = pipeline("fmri-embedding", model=str(folder))
    single = embedder(str(real_dtseries), repetition_time=1.4)
    batch = embedder([str(real_dtseries), str(real_dtseries)], repetition_time=1.4)
    extractor = MnemoDynFeatureExtractor.from_pretrained(folder)
    series = extractor([real_dtseries], repetition_time=1.4)["input_values"][0]
    expected = embed(MnemoDynModel.from_pretrained(folder), [series])[0]
    assert single.shape == (900,) and len(batch) == 2
    np.testing.assert_allclose(single, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch[1], expected, rtol=1e-5, atol=1e-6)
    parcel_means = MnemoDynFeatureExtractor(do_normalize=False)([real_dtseries], repetition_time=1.4)["input_values"]
    from_array = embedder(parcel_means[0], repetition_time=0.735)  # an array at the model's TR: scaled, not resampled
    np.testing.assert_allclose(from_array, expected, rtol=1e-3, atol=1e-5)


def test_unknown_options_and_a_folder_without_extractor_are_named(folder, tmp_path):
    with pytest.raises(ValueError, match="takes only repetition_time"):
        pipeline("fmri-embedding", model=str(folder))(np.zeros((20, 450)), pooling="max")
    MnemoDynModel(MnemoDynConfig(num_layers=1, projection_size=8, latent_channels=8)).save_pretrained(tmp_path / "bare")
    with pytest.raises((ValueError, OSError), match="feature extractor|preprocessor_config"):
        pipeline("fmri-embedding", model=str(tmp_path / "bare"))(np.zeros((20, 450)), repetition_time=0.735)
