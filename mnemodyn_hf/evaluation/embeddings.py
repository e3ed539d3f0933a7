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
from .connectivity import pearson_connectivity


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


#: What `embed` can return per run (see its docstring).
POOLINGS = ("mean_std", "correlation", "latent_mean_std")


@dataclass(frozen=True)
class BackboneStates:
    """A frozen backbone's states for each run, over its real frames: `hidden` (T, R) `last_hidden_state`, `latent`
    (T, C) the last layer's latent channels (the wavelet operator's output, before the projection C -> R), and
    `pooled` (N, 2R) the `pooler_output`."""

    hidden: list[np.ndarray]
    latent: list[np.ndarray]
    pooled: np.ndarray


@torch.no_grad()
def backbone_states(
    model, series: Sequence[np.ndarray], batch_size: int = 8, progress: str | None = None, keep_series: bool = True
) -> BackboneStates:
    """Run a [`MnemoDynModel`] in eval mode over (T, R) series of any lengths and keep its states (see
    `BackboneStates`). The latent channels are read with a forward hook on the last layer's output projection.
    `keep_series=False` keeps only the pooled output (`hidden` and `latent` stay empty, no hook)."""
    from ..data.collator import MnemoDynDataCollator

    was_training = model.training
    model.eval()
    collate = MnemoDynDataCollator(input_key="input_values")
    device = next(model.parameters()).device
    order = np.argsort([len(s) for s in series])  # similar lengths per batch: little padding
    hidden: list = [None] * len(series)
    latent: list = [None] * len(series)
    pooled = np.zeros((len(series), 2 * model.config.num_rois), np.float32)
    captured = {}
    hook = None
    if keep_series:
        hook = model.layers[-1].output_projection.register_forward_hook(
            lambda module, inputs, output: captured.update(latent=inputs[0])
        )
    try:
        for start in tqdm(range(0, len(series), batch_size), desc=progress, disable=progress is None, leave=False):
            rows = order[start : start + batch_size]
            batch = collate([{"input_values": series[row]} for row in rows])
            out = model(batch["input_values"].to(device), attention_mask=batch["attention_mask"].to(device))
            pooled[rows] = out.pooler_output.float().cpu().numpy()
            for position, row in enumerate(rows if keep_series else ()):
                frames = len(series[row])
                hidden[row] = out.last_hidden_state[position, :frames].float().cpu().numpy()
                latent[row] = captured["latent"][position, :frames].float().cpu().numpy()
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)
    if not keep_series:
        return BackboneStates([], [], pooled)
    return BackboneStates(hidden, latent, pooled)


def embed(
    model, series: Sequence[np.ndarray], batch_size: int = 8, progress: str | None = None, pooling: str = "mean_std"
) -> np.ndarray:
    """One vector per run from a frozen [`MnemoDynModel`] (eval mode), for (T, R) series of any lengths.

    `pooling`: `"mean_std"` (N, 2R), the `pooler_output` (ROI mean | standard deviation over real frames);
    `"correlation"` (N, R(R-1)/2), the Fisher-z Pearson correlations between the ROIs of the `last_hidden_state`
    (the functional connectivity of the backbone's output: second-order, it can carry what FC carries);
    `"latent_mean_std"` (N, 2C), mean | standard deviation of the last layer's latent channels.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    states = backbone_states(model, series, batch_size, progress, keep_series=pooling != "mean_std")
    if pooling == "correlation":
        return pearson_connectivity(states.hidden)
    if pooling == "latent_mean_std":
        return pooled_input(states.latent)
    return states.pooled


__all__ = [
    "POOLINGS",
    "BackboneStates",
    "PreparedInputs",
    "backbone_inputs",
    "backbone_states",
    "embed",
    "pooled_input",
]
