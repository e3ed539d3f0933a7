"""Batching variable-length runs for `transformers.Trainer`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class MnemoDynDataCollator:
    """Pad a list of examples to a batch: `input_values` (B, T_max, R) right-padded with 0, `attention_mask`
    (B, T_max) and `labels` (B, ...) when the examples have them (integers as int64, other numbers as float32).

    Each example is a dict holding a (T, R) series under `input_key` (`"bold"` for cohort rows, or
    `"input_values"`) and optionally `labels` (or `label_key`). Series are expected normalised already (the
    feature extractor's statistics from pretraining); `max_length` truncates longer ones from their start.
    """

    input_key: str = "bold"
    label_key: str = "labels"
    max_length: int | None = None
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        series = [torch.as_tensor(np.asarray(example[self.input_key]), dtype=torch.float32) for example in examples]
        if any(s.ndim != 2 for s in series):
            raise ValueError(f"every `{self.input_key}` must be a (frames, rois) series; got shapes "
                             f"{[tuple(s.shape) for s in series]}.")  # fmt: skip
        if self.max_length is not None:
            series = [s[: self.max_length] for s in series]
        length = max(len(s) for s in series)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = torch.zeros(len(series), length, series[0].shape[1])
        mask = torch.zeros(len(series), length, dtype=torch.long)
        for index, s in enumerate(series):
            batch[index, : len(s)] = s
            mask[index, : len(s)] = 1
        out = {"input_values": batch, "attention_mask": mask}
        if self.label_key in examples[0]:
            labels = np.asarray([example[self.label_key] for example in examples])
            # class indices as int64 (what cross-entropy needs, whatever the column stored), targets as float32
            out["labels"] = torch.as_tensor(labels, dtype=torch.long if labels.dtype.kind in "iub" else torch.float32)
        return out


__all__ = ["MnemoDynDataCollator"]
