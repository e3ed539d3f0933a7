"""Cutting runs into fixed-length windows, as a dataset transform.

A run of T frames gives windows starting at 0, stride, 2 * stride, ...:

* `last="drop"`: only complete windows, `(T - window) // stride + 1` of them (none when T < window, so such a
  run disappears from the result);
* `last="pad"`: `ceil(max(T - window, 0) / stride) + 1` windows, the last one zero-padded past the run's end.

Every window keeps the run's other columns (subject, session, run, site, labels) and gains `window_start` (first
frame) and `attention_mask` (1 for frames of the run, 0 for padding). Frame-level label columns (a list with one
integer per frame, -1 meaning "no label") become one label per window: the value carried by a strict majority of
the window's real frames, or -1 when no value has a majority.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import datasets
import numpy as np

#: Label of a window (or frame) that has none.
NO_LABEL = -1


def window_starts(num_frames: int, window: int, stride: int, last: Literal["drop", "pad"]) -> list[int]:
    """First frames of the windows of a run of `num_frames` frames (see the module docstring)."""
    if last == "drop":
        return list(range(0, num_frames - window + 1, stride)) if num_frames >= window else []
    count = math.ceil(max(num_frames - window, 0) / stride) + 1
    return [index * stride for index in range(count)]


def majority_label(labels: np.ndarray) -> int:
    """The value held by more than half of `labels`, or `NO_LABEL`."""
    if len(labels) == 0:
        return NO_LABEL
    values, counts = np.unique(labels, return_counts=True)
    best = int(np.argmax(counts))
    return int(values[best]) if 2 * counts[best] > len(labels) else NO_LABEL


def window_runs(
    dataset: datasets.Dataset,
    window: int,
    *,
    stride: int | None = None,
    last: Literal["drop", "pad"] = "drop",
    frame_label_columns: Sequence[str] = (),
    num_proc: int | None = None,
) -> datasets.Dataset:
    """Cut every run of `dataset` (cohort schema) into windows of `window` frames, `stride` apart (default:
    `window`, no overlap). Returns an unformatted dataset with one row per window, `bold` (window, R)."""
    stride = stride or window
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got window={window}, stride={stride}.")
    if last not in ("drop", "pad"):
        raise ValueError(f"last must be 'drop' or 'pad', got {last!r}.")
    features = dataset.features.copy()
    for column in frame_label_columns:
        feature = features.get(column)
        if not isinstance(feature, datasets.List) or not feature.feature.dtype.startswith("int"):
            raise ValueError(f"Frame label column {column!r} must be a list of integers per frame, got {feature!r}.")
        features[column] = feature.feature
    features["window_start"] = datasets.Value("int32")
    features["attention_mask"] = datasets.List(datasets.Value("int8"), length=window)

    num_rois = features["bold"].shape[1]
    windows = dataset.with_format("numpy").map(
        _cut,
        batched=True,
        batch_size=8,
        fn_kwargs={"window": window, "stride": stride, "last": last, "frame_label_columns": tuple(frame_label_columns)},
        remove_columns=dataset.column_names,
        features=features,
        num_proc=num_proc,
        writer_batch_size=max(1, min(1000, 64 * 2**20 // (window * num_rois * 4))),
        desc=f"Cutting {window}-frame windows",
    )
    return windows.with_format(None)


def _cut(batch: dict[str, list[Any]], *, window: int, stride: int, last: str, frame_label_columns: tuple[str, ...]):
    output: dict[str, list[Any]] = {name: [] for name in (*batch, "window_start", "attention_mask")}
    for row in range(len(batch["bold"])):
        bold = batch["bold"][row]
        num_frames = len(bold)
        for start in window_starts(num_frames, window, stride, last):
            valid = min(window, num_frames - start)
            segment = np.zeros((window, bold.shape[1]), np.float32)
            segment[:valid] = bold[start : start + valid]
            for name, values in batch.items():
                if name == "bold":
                    output[name].append(segment)
                elif name in frame_label_columns:
                    output[name].append(majority_label(values[row][start : start + valid]))
                else:
                    output[name].append(values[row])
            output["window_start"].append(start)
            output["attention_mask"].append((np.arange(window) < valid).astype(np.int8))
    return output


__all__ = ["NO_LABEL", "majority_label", "window_runs", "window_starts"]
