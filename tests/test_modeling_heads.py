import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

from mnemodyn_hf import MnemoDynConfig, MnemoDynForRegression, MnemoDynForSequenceClassification
from mnemodyn_hf.data import MnemoDynDataCollator, load_connattractor_heat_windows
from mnemodyn_hf.modeling_heads import pool_frames


@pytest.fixture(scope="module")
def heat_windows():
    """Real heat-vs-rest windows (10 frames, 20 s) of connattractor subjects, each run z-scored on its own."""
    return (
        load_connattractor_heat_windows(subjects=["01", "02", "03", "04"])
        .rename_column("heat", "labels")
        .with_format("numpy")
    )


def _config(**overrides) -> MnemoDynConfig:
    values = dict(
        num_rois=122,
        num_layers=2,
        projection_size=16,
        latent_channels=8,
        context_length=32,
        wavelet_levels=3,
        repetition_time=2.0,
        head_hidden_size=32,
    )
    values.update(overrides)
    return MnemoDynConfig(**values)


def _train(model, dataset, tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=16,
        max_steps=6,
        learning_rate=1e-2,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        remove_unused_columns=False,
        logging_steps=3,
        seed=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=MnemoDynDataCollator())
    return trainer, trainer.train()


def test_classification_trains_with_trainer_and_reloads(heat_windows, tmp_path):
    torch.manual_seed(0)
    model = MnemoDynForSequenceClassification(_config(num_labels=2))
    backbone_before = {k: v.clone() for k, v in model.mnemodyn.state_dict().items()}
    head_before = model.head.output.weight.detach().clone()
    trainer, result = _train(model, heat_windows, tmp_path)
    assert np.isfinite(result.training_loss)
    assert not torch.equal(model.head.output.weight, head_before)  # the head learned
    for key, value in model.mnemodyn.state_dict().items():  # the frozen backbone did not move
        assert torch.equal(value, backbone_before[key]), key
    model.save_pretrained(tmp_path / "fine-tuned")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "fine-tuned").eval()
    batch = MnemoDynDataCollator()([heat_windows[i] for i in range(8)])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)


def test_regression_trains_with_trainer_and_reloads(heat_windows, tmp_path):
    torch.manual_seed(0)
    targets = heat_windows.map(lambda row: {"labels": [float(row["window_start"]) / 100, float(row["labels"])]})
    model = MnemoDynForRegression(_config(num_targets=2))
    _, result = _train(model, targets.with_format("numpy"), tmp_path)
    assert np.isfinite(result.training_loss)
    model.save_pretrained(tmp_path / "regressor")
    loaded = MnemoDynForRegression.from_pretrained(tmp_path / "regressor").eval()
    batch = MnemoDynDataCollator()([targets.with_format("numpy")[i] for i in range(4)])
    model.eval()
    with torch.no_grad():
        assert loaded(**batch).predictions.shape == (4, 2)
        assert torch.equal(model(**batch).predictions, loaded(**batch).predictions)


def test_scoring_in_eval_mode_is_deterministic_and_train_mode_is_not():
    torch.manual_seed(0)
    model = MnemoDynForSequenceClassification(_config(num_labels=2, head_dropout=0.5))
    x = torch.randn(4, 20, 122)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits, model(x).logits)  # dropout off when scored
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x).logits, model(x).logits)


def test_freezing_keeps_only_the_head_and_the_requested_last_layers_trainable():
    frozen = MnemoDynForSequenceClassification(_config(num_labels=3))
    trainable = {name for name, p in frozen.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith("head.") for name in trainable)
    partly = MnemoDynForSequenceClassification(_config(num_labels=3, num_unfrozen_layers=1))
    trainable = {
        name.split(".")[2] for name, p in partly.named_parameters() if p.requires_grad and name.startswith("mnemodyn.")
    }
    assert trainable == {"1"}  # only the last of the 2 layers
    full = MnemoDynForSequenceClassification(_config(num_labels=3, freeze_backbone=False))
    assert all(p.requires_grad for p in full.parameters())


@pytest.mark.parametrize(
    ("problem_type", "labels"),
    [
        ("single_label_classification", torch.tensor([0, 2, 1, 2])),
        ("multi_label_classification", torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])),
        ("regression", torch.randn(4, 3)),
    ],
)
def test_problem_types_follow_transformers_rules(problem_type, labels):
    model = MnemoDynForSequenceClassification(_config(num_labels=3, problem_type=problem_type))
    out = model(torch.randn(4, 20, 122), labels=labels)
    assert out.logits.shape == (4, 3) and out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_pooling_ignores_padded_frames():
    hidden = torch.randn(2, 6, 3)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    for pooling in ("mean", "mean_std", "max"):
        pooled = pool_frames(hidden, mask, pooling)
        alone = pool_frames(hidden[:1, :4], None, pooling)
        assert torch.allclose(pooled[:1], alone, atol=1e-6), pooling


def test_regression_labels_of_the_wrong_width_are_named():
    model = MnemoDynForRegression(_config(num_targets=2))
    with pytest.raises(ValueError, match="num_targets=2"):
        model(torch.randn(4, 20, 122), labels=torch.randn(4, 3))


def test_task_models_load_a_saved_backbone(tmp_path):
    from mnemodyn_hf import MnemoDynModel

    backbone = MnemoDynModel(_config())
    backbone.save_pretrained(tmp_path / "backbone")
    for cls, overrides in (
        (MnemoDynForSequenceClassification, {"num_labels": 2}),
        (MnemoDynForRegression, {"num_targets": 1}),
    ):
        task = cls.from_pretrained(tmp_path / "backbone", **overrides)
        for key, value in backbone.state_dict().items():
            assert torch.equal(task.mnemodyn.state_dict()[key], value), key
        assert all(not p.requires_grad for p in task.mnemodyn.parameters())
        assert torch.equal(task.head.norm.weight, torch.ones_like(task.head.norm.weight))  # a new head is initialised
        assert torch.all(task.head.output.bias == 0) and torch.isfinite(task.head.hidden.weight).all()


def test_roi_adapter_maps_another_atlas_into_a_frozen_backbone_and_reloads(heat_windows, tmp_path):
    """Real 122-ROI (MIST) windows into a 94-ROI backbone: the adapter and head train, the backbone does not."""
    torch.manual_seed(0)
    model = MnemoDynForSequenceClassification(_config(num_rois=94, adapter_input_rois=122, num_labels=2))
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(("roi_adapter.", "head."))}
    adapter_before = model.roi_adapter.weight.detach().clone()
    backbone_before = {k: v.clone() for k, v in model.mnemodyn.state_dict().items()}
    _, result = _train(model, heat_windows, tmp_path)
    assert np.isfinite(result.training_loss) and not torch.equal(model.roi_adapter.weight, adapter_before)
    assert all(torch.equal(value, backbone_before[key]) for key, value in model.mnemodyn.state_dict().items())
    model.save_pretrained(tmp_path / "adapted")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "adapted").eval()
    model.eval()
    x = torch.from_numpy(np.stack(heat_windows[:3]["bold"])).float()
    with torch.no_grad():
        assert torch.equal(loaded(x).logits, model(x).logits)
    with pytest.raises(ValueError, match=r"\(batch, frames, 122\) for this model's ROI adapter"):
        model(torch.randn(2, 10, 94))


def test_correlation_pooling_is_the_fisher_z_connectivity_and_trains_through_a_projection():
    import numpy as np

    from mnemodyn_hf import MnemoDynConfig, MnemoDynForSequenceClassification
    from mnemodyn_hf.modeling_heads import pool_frames

    torch.manual_seed(0)
    hidden = torch.randn(2, 50, 6)
    mask = torch.ones(2, 50)
    mask[1, 40:] = 0
    pooled = pool_frames(hidden, mask, "correlation")
    expected = np.arctanh(np.corrcoef(hidden[1, :40].numpy().T)[np.triu_indices(6, k=1)])
    np.testing.assert_allclose(pooled[1].numpy(), expected, rtol=1e-4, atol=1e-5)
    config = MnemoDynConfig(num_rois=12, num_layers=1, latent_channels=8, context_length=64, wavelet_levels=3,
                            num_labels=2, head_pooling="correlation", head_pooling_components=4)  # fmt: skip
    model = MnemoDynForSequenceClassification(config)
    out = model(torch.randn(3, 64, 12), labels=torch.tensor([0, 1, 0]))
    assert model.head.hidden.in_features == 6 and out.logits.shape == (3, 2)
    out.loss.backward()
    assert model.pooling_projection.weight.grad is not None  # trains with the head; the backbone stays frozen
    assert all(p.grad is None for p in model.mnemodyn.parameters())
