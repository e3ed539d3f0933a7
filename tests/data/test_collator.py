import numpy as np
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
