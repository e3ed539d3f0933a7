"""From cohort runs to what a frozen backbone sees and returns.

`backbone_inputs` enforces the backbone's contract once, at the boundary: the ROI count must match, every run is
resampled from its own TR to the backbone's `config.repetition_time` with the package's resampler, and normalised
as in pretraining (by the fitted feature extractor saved beside the weights, when it covers these ROIs; otherwise a
per-run z-score, said in the report). `embed` returns pooled outputs, one vector per run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..configuration_mnemodyn import MnemoDynConfig
from ..feature_extraction_mnemodyn import load_fitted_extractor
from ..preprocessing.robust_scaling import zscore_frames
from ..preprocessing.temporal_resampling import resample_frames


@dataclass(frozen=True)
class PreparedInputs:
    """Backbone-ready runs ((T', R) float32 at the backbone's TR) and how they were made."""

    series: list[np.ndarray]
    normalisation: str
    resampled_runs: int


def backbone_inputs(
    series: Sequence[np.ndarray],
    repetition_times: Sequence[float | None],
    backbone: str | os.PathLike | None,
    config: MnemoDynConfig,
    normalise: bool = True,
) -> PreparedInputs:
    """Resample every run to `config.repetition_time` and normalise it (see the module docstring).

    Raises:
        ValueError: the runs' ROI count differs from the backbone's, or a run has no TR.
    """
    rois = {np.shape(s)[1] for s in series}
    if rois != {config.num_rois}:
        raise ValueError(
            f"The cohort has {sorted(rois)} ROIs per frame; the backbone expects {config.num_rois} and has no ROI "
            "adapter for a frozen read-out. Use a backbone pretrained on this atlas (mnemodyn pretrain --corpus DIR), "
            "or parcellate the data with the backbone's atlas."
        )
    missing = [index for index, tr in enumerate(repetition_times) if tr is None or not np.isfinite(tr) or tr <= 0]
    if missing:
        raise ValueError(
            f"{len(missing)} run(s) have no repetition time (rows {missing[:5]}); the backbone runs at TR "
            f"{config.repetition_time} s and every run must be resampled to it. Fill the cohort's `tr` column "
            "(seconds)."
        )
    extractor = load_fitted_extractor(backbone) if backbone is not None else None
    if not normalise:
        normalise_run, note = (lambda bold: bold), "none here: rows were normalised per run by their loader"  # noqa: E731
    elif extractor is not None and extractor.feature_size == config.num_rois:
        extractor.do_resample = False  # resampled below, from each run's own TR

        def normalise_run(bold):
            return extractor(bold)["input_values"][0]

        note = "robust scaling by the backbone's feature extractor (its pretraining statistics)"
    else:
        normalise_run = zscore_frames
        note = "per-run z-score (the backbone carries no statistics for these ROIs)"
    prepared, resampled = [], 0
    for bold, tr in zip(series, repetition_times):
        resampled += not np.isclose(tr, config.repetition_time, rtol=1e-6)
        frames = resample_frames(np.asarray(bold, np.float64), float(tr), config.repetition_time)
        prepared.append(normalise_run(frames).astype(np.float32))
    return PreparedInputs(prepared, note, resampled)


def pooled_input(series: Sequence[np.ndarray]) -> np.ndarray:
    """The identity backbone: per-ROI temporal mean and standard deviation of each run, (N, 2R)."""
    return np.stack([np.concatenate([s.mean(axis=0), s.std(axis=0)]) for s in series])


@torch.no_grad()
def embed(model, series: Sequence[np.ndarray], batch_size: int = 8, progress: str | None = None) -> np.ndarray:
    """Pooled embeddings (N, 2R) of a [`MnemoDynModel`] for a list of (T, R) series (any lengths), in eval mode."""
    from ..data.collator import MnemoDynDataCollator

    was_training = model.training
    model.eval()
    collate = MnemoDynDataCollator(input_key="input_values")
    device = next(model.parameters()).device
    order = np.argsort([len(s) for s in series])  # similar lengths per batch: little padding
    pooled = np.zeros((len(series), 2 * model.config.num_rois), np.float32)
    starts = range(0, len(series), batch_size)
    for start in tqdm(starts, desc=progress, disable=progress is None, leave=False):
        rows = order[start : start + batch_size]
        batch = collate([{"input_values": series[row]} for row in rows])
        out = model(batch["input_values"].to(device), attention_mask=batch["attention_mask"].to(device))
        pooled[rows] = out.pooler_output.float().cpu().numpy()
    model.train(was_training)
    return pooled


__all__ = ["PreparedInputs", "backbone_inputs", "embed", "pooled_input"]
