"""From cohort runs to what a frozen backbone sees and returns.

`backbone_inputs` enforces the backbone's contract once, at the boundary: the ROI count must match, and every run
goes through the backbone's own feature extractor (the one saved beside the weights, checked against its config),
which resamples it once, from the run's TR to the backbone's, and scales it with its pretraining statistics. A
backbone without statistics is refused unless the caller chooses per-run z-scoring, which the report then states.
`embed` returns pooled outputs, one vector per run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..configuration_mnemodyn import MnemoDynConfig
from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
from ..preprocessing.robust_scaling import zscore_frames
from .connectivity import pearson_connectivity

#: How `backbone_inputs` scales runs: the backbone's pretraining statistics, a per-run z-score (an explicit choice
#: for backbones without statistics), or nothing (rows already normalized by their loader).
NORMALIZATIONS = ("pretraining", "per-run-zscore", "none")


@dataclass(frozen=True)
class PreparedInputs:
    """Backbone-ready runs ((T', R) float32 at the backbone's TR) and how they were made."""

    series: list[np.ndarray]
    normalization: str
    resampled_runs: int


def backbone_extractor(backbone: str | os.PathLike | None, config: MnemoDynConfig) -> MnemoDynFeatureExtractor:
    """The feature extractor saved beside `backbone`'s weights (checked against `config`), or, for a folder without
    one, an unfitted extractor for `config.num_rois` ROIs at `config.repetition_time`."""
    folder = None if backbone is None else os.fspath(backbone)
    if folder is not None and os.path.isfile(os.path.join(folder, "preprocessor_config.json")):
        extractor = MnemoDynFeatureExtractor.from_pretrained(folder)
        extractor.check_model_config(config, model_name=folder)
    else:
        extractor = MnemoDynFeatureExtractor.for_rois(config.num_rois, config.repetition_time)
    if not extractor.do_resample or extractor.target_repetition_time is None:
        raise ValueError(
            f"The feature extractor of {folder} does not resample (do_resample=False or no target TR), but runs "
            f"must reach the backbone at its TR {config.repetition_time:g} s: save the extractor with "
            f"target_repetition_time={config.repetition_time:g}."
        )
    return extractor


def backbone_inputs(
    series: Sequence[np.ndarray],
    repetition_times: Sequence[float | None],
    backbone: str | os.PathLike | None,
    config: MnemoDynConfig,
    normalization: str = "pretraining",
) -> PreparedInputs:
    """Resample every run to `config.repetition_time` and scale it (see the module docstring and `NORMALIZATIONS`).

    Raises:
        ValueError: the runs' ROI count differs from the backbone's, a run has no TR, or `normalization` is
            `"pretraining"` and the backbone carries no statistics.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")
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
    extractor = backbone_extractor(backbone, config)
    if normalization == "pretraining" and extractor.roi_median is None:
        raise ValueError(
            f"The backbone {backbone} carries no normalization statistics (its feature extractor was never fitted), "
            "so its inputs cannot be scaled as in pretraining. Fit them on unlabelled or training runs and save them "
            "beside the weights (MnemoDynFeatureExtractor.from_pretrained(folder).fit(runs).save_pretrained(folder)),"
            " or choose per-run z-scoring explicitly (--normalization per-run-zscore; the report states it)."
        )
    extractor.do_normalize = normalization == "pretraining"
    scale = zscore_frames if normalization == "per-run-zscore" else (lambda frames: frames)  # noqa: E731
    prepared, resampled = [], 0
    for bold, tr in zip(series, repetition_times, strict=True):
        resampled += not np.isclose(tr, config.repetition_time, rtol=1e-6)
        frames = extractor(np.asarray(bold, np.float64), repetition_time=float(tr))["input_values"][0]
        prepared.append(scale(frames).astype(np.float32))
    return PreparedInputs(prepared, NORMALIZATION_NOTES[normalization], resampled)


#: What the report says about each normalization.
NORMALIZATION_NOTES = {
    "pretraining": "robust scaling by the backbone's feature extractor (its pretraining statistics)",
    "per-run-zscore": "per-run z-score, chosen explicitly (the backbone carries no pretraining statistics)",
    "none": "none here: rows were normalized per run by their loader",
}


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
    "NORMALIZATIONS",
    "POOLINGS",
    "BackboneStates",
    "PreparedInputs",
    "backbone_extractor",
    "backbone_inputs",
    "backbone_states",
    "embed",
    "pooled_input",
]
