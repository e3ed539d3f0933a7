"""window_runs: fixed-length windows with ids, attention masks and per-window majority labels."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from mnemodyn_hf.data import cohort_features, window_runs
from mnemodyn_hf.data.windows import NO_LABEL, majority_label, window_starts


@pytest.mark.parametrize(
    ("frames", "window", "stride", "last", "starts"),
    [
        (10, 4, 4, "drop", [0, 4]),
        (10, 4, 4, "pad", [0, 4, 8]),
        (12, 4, 4, "pad", [0, 4, 8]),
        (10, 4, 3, "drop", [0, 3, 6]),
        (10, 4, 3, "pad", [0, 3, 6]),
        (11, 4, 3, "pad", [0, 3, 6, 9]),
        (3, 4, 4, "drop", []),
        (3, 4, 4, "pad", [0]),
    ],
)
def test_window_starts(frames, window, stride, last, starts):
    assert window_starts(frames, window, stride, last) == starts


def test_majority_label_needs_more_than_half():
    assert majority_label(np.array([1, 1, 0])) == 1
    assert majority_label(np.array([1, 1, 0, 0])) == NO_LABEL
    assert majority_label(np.array([2, 2, -1, -1, -1])) == NO_LABEL
    assert majority_label(np.array([], dtype=int)) == NO_LABEL


def _runs():
    features = cohort_features(2, {"age": datasets.Value("int64"), "state": datasets.List(datasets.Value("int8"))})
    bold = [np.arange(2 * n, dtype=np.float32).reshape(n, 2) for n in (7, 4)]
    return datasets.Dataset.from_dict(
        {
            "bold": bold,
            "tr": [2.0, 1.0],
            "subject": ["a", "b"],
            "session": ["1", ""],
            "run": ["1", "2"],
            "site": ["x", "y"],
            "path": ["p", "q"],
            "age": [30, 40],
            "state": [[0, 0, 1, 1, 1, -1, -1], [1, 0, 0, 1]],
        },
        features=features,
    )


def test_windows_keep_ids_labels_and_mask_padding():
    windows = window_runs(_runs(), 3, stride=2, last="pad", frame_label_columns=["state"])
    assert windows.features["bold"] == datasets.Array2D((None, 2), "float32")
    assert windows.features["state"] == datasets.Value("int8")
    rows = list(windows.with_format("numpy"))
    assert [(r["subject"], r["run"], r["age"], r["window_start"]) for r in rows] == [
        ("a", "1", 30, 0),
        ("a", "1", 30, 2),
        ("a", "1", 30, 4),
        ("b", "2", 40, 0),
        ("b", "2", 40, 2),
    ]
    # run a: [0 0 1] [1 1 1] [1 -1 -1]; run b: [1 0 0] [0 1 | pad]
    assert [int(r["state"]) for r in rows] == [0, 1, NO_LABEL, 0, NO_LABEL]
    np.testing.assert_array_equal(rows[1]["bold"], np.arange(4, 10, dtype=np.float32).reshape(3, 2))
    np.testing.assert_array_equal(rows[4]["bold"], [[4, 5], [6, 7], [0, 0]])
    assert rows[4]["attention_mask"].tolist() == [1, 1, 0] and rows[0]["attention_mask"].tolist() == [1, 1, 1]


def test_drop_keeps_only_complete_windows():
    windows = window_runs(_runs(), 4, last="drop")
    assert windows["subject"] == ["a", "b"] and windows["window_start"] == [0, 0]
    assert len(window_runs(_runs(), 5)) == 1  # the 4-frame run has no complete window


def test_frame_label_columns_must_be_integer_lists():
    with pytest.raises(ValueError, match="list of integers per frame"):
        window_runs(_runs(), 3, frame_label_columns=["age"])
