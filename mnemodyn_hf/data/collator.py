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

    An example may also carry its own `attention_mask` (T,) of 0/1, e.g. the zero padding of the last window of
    `window_runs(..., last="pad")`: its frames marked 0 stay 0 in the batch mask (it is combined with the batch's
    padding mask by logical and), so padded frames are never read as real ones. Such a mask must have one entry per
    frame of the series, only 0 and 1, and mark real frames first (right padding), the convention of
    `MnemoDynModel`; anything else raises a `ValueError` saying what is wrong and how to fix it.
    """

    input_key: str = "bold"
    label_key: str = "labels"
    max_length: int | None = None
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        series = [torch.as_tensor(np.asarray(example[self.input_key]), dtype=torch.float32) for example in examples]
        if any(s.ndim != 2 for s in series):
            raise ValueError(
                f"every `{self.input_key}` must be a (frames, rois) series; got shapes "
                f"{[tuple(s.shape) for s in series]}."
            )
        row_masks = [self._row_mask(example, s, index) for index, (example, s) in enumerate(zip(examples, series))]
        if self.max_length is not None:
            series = [s[: self.max_length] for s in series]
            row_masks = [None if m is None else m[: self.max_length] for m in row_masks]
        length = max(len(s) for s in series)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = torch.zeros(len(series), length, series[0].shape[1])
        mask = torch.zeros(len(series), length, dtype=torch.long)
        for index, (s, row_mask) in enumerate(zip(series, row_masks)):
            # frames the row marks as padding are zeroed like the batch's own padding
            batch[index, : len(s)] = s if row_mask is None else torch.where(row_mask[:, None] == 1, s, 0.0)
            mask[index, : len(s)] = 1 if row_mask is None else row_mask
        out = {"input_values": batch, "attention_mask": mask}
        if self.label_key in examples[0]:
            labels = np.asarray([example[self.label_key] for example in examples])
            # class indices as int64 (what cross-entropy needs, whatever the column stored), targets as float32
            out["labels"] = torch.as_tensor(labels, dtype=torch.long if labels.dtype.kind in "iub" else torch.float32)
        return out

    def _row_mask(self, example: dict[str, Any], series: torch.Tensor, index: int) -> torch.Tensor | None:
        """The example's own `attention_mask` as a validated (T,) int64 tensor of 0/1, or None when it has none."""
        if example.get("attention_mask") is None:
            return None
        mask = torch.as_tensor(np.asarray(example["attention_mask"]))
        where = f"example {index}'s `attention_mask`"
        if mask.ndim != 1 or len(mask) != len(series):
            raise ValueError(
                f"{where} has shape {tuple(mask.shape)} but its `{self.input_key}` has {len(series)} frames; it must "
                f"be a ({len(series)},) sequence with one 0/1 entry per frame. Rebuild it from the series (e.g. "
                "with `window_runs`) or drop the column to treat every frame as real."
            )
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            found = sorted({str(value) for value in mask.flatten().tolist() if value not in (0, 1)})
            raise ValueError(
                f"{where} must contain only 0 (padding) and 1 (real frame); found {found[:5]}. Binarise it "
                "(e.g. `(mask > 0).astype(np.int8)`) or drop the column to treat every frame as real."
            )
        mask = mask.long()
        if bool((mask[1:] > mask[:-1]).any()):
            first = int((mask[1:] > mask[:-1]).nonzero()[0]) + 1
            raise ValueError(
                f"{where} marks a real frame (frame {first}) after padding; MnemoDyn needs right padding only (real "
                "frames first, padding last). Drop the padded or bad frames from the series instead (or cut it into "
                "separate runs) and give a mask of ones followed by zeros."
            )
        return mask


__all__ = ["MnemoDynDataCollator"]
