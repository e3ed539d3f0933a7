"""Masked reconstruction on subjects the model never trained on, beside seven training-free or training-fitted
predictors on the same masks:

| predictor | fills a hidden entry with |
|---|---|
| `zero` | 0, the corpus median in robust-scaled units |
| `roi_mean` | the mean of the ROI's visible frames in the window |
| `interpolation` | the straight line between the ROI's nearest visible frames |
| `spatial_conditional_mean` | Gaussian conditional mean given the frame's visible ROIs (training covariance) |
| `spatiotemporal_ridge` | the spatial estimate refined by per-ROI ridges on frames t-2..t+2 (training subjects) |
| `adaptive_conditional_mean` | the spatial conditional mean under the training covariance adapted to the window's own |
| `linear_ar` | a ridge VAR(p) forward and backward in time from the filled frames around it (training subjects) |
| `mnemodyn` | the pretraining head on the backbone's output for the masked input |

Three maskings, each drawn per window from a seed (the layouts of `hidden_entry_masks`): `per_roi` (in every ROI,
spans of `mask_span_frames` frames hidden until `mask_ratio` of the entries are), `whole_frame` (the same spans
hiding all ROIs at once, which spatial imputation cannot fill) and `forecast` (the last `mask_span_frames` frames of
the window, all ROIs).

Scored subjects are those in neither list of the model's `pretraining_subjects.json`: neither the training subjects
(which fitted the model and the fitted predictors) nor the validation subjects (which chose the recipe, and choose
`linear_ar`'s order p and ridge penalty on their own masked windows; without any, `linear_ar.DEFAULT_ORDER` and
`DEFAULT_ALPHA`, as the report's `linear_ar` entry of each masking says). R^2 =
1 - SSE / SST over the hidden entries, pooled over the scored subjects, with a subject-bootstrap 95 % CI; each
predictor is compared with the model by a paired permutation test over subjects (Holm-adjusted over the
predictors of a masking).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from tqdm.auto import tqdm

from ..configuration_mnemodyn import MnemoDynConfig
from ..feature_extraction_mnemodyn import load_fitted_extractor
from ..hub import read_pretraining_subjects
from ..modeling_pretraining import MnemoDynForPreTraining
from ..objectives import OBJECTIVES, hidden_entry_masks, hide_entries
from ..reconstruction_predictors import TRIVIAL_PREDICTORS, r_squared_from_sums, scored_sums
from .adaptive_spatial import AdaptiveConditionalMean
from .linear_ar import LinearAutoregression, tune_linear_autoregression
from .spatial_predictors import MaskFunction, SpatialConditionalMean
from .spatiotemporal_ridge import SpatioTemporalRidge
from .statistics import NUM_BOOTSTRAP, bootstrap_ci, holm, paired_comparison

MASKINGS = ("per_roi", "whole_frame", "forecast")
#: The objective whose corruption and trivial predictors the evaluation uses, whatever the model trained with.
OBJECTIVE = OBJECTIVES["masked"]


def reconstruction_masks(masking: str, seeds: torch.Tensor, frames: int, config: MnemoDynConfig) -> torch.Tensor:
    """(B,) seeds -> (B, frames, rois) bool, True = hidden: the pretraining objective's masks
    (`hidden_entry_masks`) with layout `masking`, one of MASKINGS, on windows of `frames` real frames."""
    if masking not in MASKINGS:
        raise ValueError(f"masking must be one of {MASKINGS}, got {masking!r}.")
    lengths = torch.full((len(seeds),), frames)
    return hidden_entry_masks(
        seeds, lengths, frames, config.num_rois, masking, config.mask_ratio, config.mask_span_frames
    )


@torch.no_grad()
def model_fill(model: MnemoDynForPreTraining, values: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    """The pretraining model's reconstruction of the hidden entries of (B, T, R) `values` under any mask, from the
    masked objective's corruption (`hide_entries`)."""
    corruption = hide_entries(values, hidden)
    reconstruction, _ = model.reconstruct(corruption.corrupted, corruption.visible)
    return torch.where(hidden, reconstruction, values)


@dataclass
class HeldOutWindows:
    """The data of a reconstruction evaluation (`held_out_windows`): the model, the windows of the subjects outside
    its pretraining split, the windows of its validation subjects (which choose predictor settings, never scored)
    and the runs of its pretraining training subjects, all robust-scaled by the model folder's fitted extractor."""

    model: MnemoDynForPreTraining
    values: torch.Tensor  # (W, T, R): non-overlapping windows of the held-out runs
    subjects: np.ndarray  # (W,): the subject of each window
    held_out_runs: list[tuple[str, np.ndarray]]  # (subject, (T_i, R)) of every held-out run
    train_runs: list[torch.Tensor]  # (T_i, R) runs of the pretraining training subjects
    validation_subjects: list[str]  # subjects of `runs` that chose the recipe: neither scored nor fitted on
    validation_values: torch.Tensor  # (V, T, R): non-overlapping windows of their runs (V = 0 without any)

    def masks(self, masking: str, seed: int) -> torch.Tensor:
        """(W, T, R) bool, True = hidden: the masks of `masking` drawn for these windows from `seed`."""
        return self._draw_masks(masking, f"{seed}:{masking}", len(self.values))

    def validation_masks(self, masking: str, seed: int) -> torch.Tensor:
        """(V, T, R) bool, True = hidden: masks of `masking` for the validation windows, from their own stream of
        `seed`."""
        return self._draw_masks(masking, f"{seed}:{masking}:validation", len(self.validation_values))

    def _draw_masks(self, masking: str, stream: str, count: int) -> torch.Tensor:
        seeds = torch.tensor([zlib.crc32(f"{stream}:{i}".encode()) for i in range(count)], dtype=torch.long)
        return reconstruction_masks(masking, seeds, self.values.shape[1], self.model.config)

    def mask_function(self, masking: str, seed: int) -> MaskFunction:
        """A `mask_fn` for fitted predictors: (N, T, R) values -> (N, T, R) visibility, drawn like the test masks
        from its own stream of `seed` (never the test masks)."""
        rng = np.random.default_rng(zlib.crc32(f"{seed}:{masking}:train".encode()))

        def draw(batch: torch.Tensor) -> torch.Tensor:
            batch_seeds = torch.as_tensor(rng.integers(0, 2**31, batch.shape[0]))
            return ~reconstruction_masks(masking, batch_seeds, batch.shape[1], self.model.config)

        return draw


def held_out_windows(model_folder: str | os.PathLike, runs: datasets.Dataset) -> HeldOutWindows:
    """Load a `mnemodyn pretrain` model folder and split `runs` by its pretraining subjects: non-overlapping
    `context_length` windows of the runs of subjects in none of its lists (train, validation, unused), the same
    windows of the validation subjects' runs (to choose predictor settings on, never scored), and the training runs
    the fitted predictors learn from.

    Raises:
        ValueError: the folder is not a `mnemodyn pretrain` model folder (no subject split or fitted feature
            extractor), or every subject of `runs` was in its pretraining split.
    """
    subjects, extractor = read_pretraining_subjects(model_folder), load_fitted_extractor(model_folder)
    if subjects is None or extractor is None:
        raise ValueError(
            f"{model_folder} lacks the subject split (pretraining_subjects.json) or the fitted feature extractor "
            "that a `mnemodyn pretrain` model/ folder carries: the held-out subjects cannot be told apart."
        )
    model = MnemoDynForPreTraining.from_pretrained(model_folder).eval()
    train, validation = set(subjects["train"]), set(subjects["validation"])
    unused = set(subjects.get("unused", []))  # training subjects a `--max-train-subjects` run left out
    prepared = {"train": [], "validation": [], "held_out": []}
    for row in runs.with_format("numpy"):
        if row["subject"] in unused:
            continue
        split = "train" if row["subject"] in train else "validation" if row["subject"] in validation else "held_out"
        scaled = extractor(row["bold"], repetition_time=float(row["tr"]))["input_values"][0]
        prepared[split].append((row["subject"], scaled))
    if not prepared["held_out"]:
        raise ValueError(
            f"Every subject of these runs is in {model_folder}'s pretraining_subjects.json (train or validation), "
            "so none is unseen: give runs of other subjects, or pretrain with `--test-fraction` to keep some out."
        )
    window = model.config.context_length

    def windows(split: str) -> list[tuple[str, torch.Tensor]]:
        return [
            (subject, torch.as_tensor(bold[start : start + window], dtype=torch.float32))
            for subject, bold in prepared[split]
            for start in range(0, len(bold) - window + 1, window)
        ]

    held_out, validation_windows = windows("held_out"), windows("validation")
    return HeldOutWindows(
        model=model,
        values=torch.stack([w for _, w in held_out]),
        subjects=np.array([subject for subject, _ in held_out]),
        held_out_runs=prepared["held_out"],
        train_runs=[torch.as_tensor(bold, dtype=torch.float32) for _, bold in prepared["train"]],
        validation_subjects=sorted({str(subject) for subject, _ in prepared["validation"]}),
        validation_values=torch.stack([w for _, w in validation_windows])
        if validation_windows
        else torch.zeros(0, window, model.config.num_rois),
    )


def evaluate_reconstruction(
    model_folder: str | os.PathLike, runs: datasets.Dataset, *, seed: int = 0, num_bootstrap: int = NUM_BOOTSTRAP
) -> dict:
    """Score the model folder's reconstruction on the runs of subjects in neither list of its pretraining subjects
    (`held_out_windows`, whose errors it raises), beside the predictors of the module docstring.

    Returns:
        `{"held_out_subjects", "excluded_validation_subjects", "windows", "window_frames", "mask_ratio",
        "mask_span_frames", "maskings": {masking: score_fills(...) | {"linear_ar": linear_ar_settings(...)}}}`.
    """
    data = held_out_windows(model_folder, runs)
    config, values = data.model.config, data.values
    spatial = SpatialConditionalMean().fit(data.train_runs)
    report = {
        "held_out_subjects": sorted({str(subject) for subject in data.subjects}),
        "excluded_validation_subjects": data.validation_subjects,
        "windows": len(values),
        "window_frames": config.context_length,
        "mask_ratio": config.mask_ratio,
        "mask_span_frames": config.mask_span_frames,
        "maskings": {},
    }
    for masking in tqdm(MASKINGS, desc="Maskings"):
        hidden = data.masks(masking, seed)
        ridge = SpatioTemporalRidge(seed=seed).fit(data.train_runs, data.mask_function(masking, seed))
        adaptive = AdaptiveConditionalMean().fit(data.train_runs, data.mask_function(masking, seed), len(values[0]))
        visible, corrupted = ~hidden, hide_entries(values, hidden).corrupted
        fills = {
            "mnemodyn": model_fill(data.model, values, hidden),
            "zero": torch.where(hidden, torch.zeros_like(values), values),
            **{name: TRIVIAL_PREDICTORS[name](values, corrupted, visible) for name in OBJECTIVE.baselines},
            "spatial_conditional_mean": spatial.fill(values, visible),
            "spatiotemporal_ridge": ridge.fill(values, visible),
            "adaptive_conditional_mean": adaptive.fill(values, visible),
        }
        linear_ar, settings = linear_ar_settings(data, masking, seed)
        fills["linear_ar"] = linear_ar.fill(values, visible)
        scores = score_fills(fills, values, hidden, data.subjects, num_bootstrap, seed)
        scores.pop("sums")
        report["maskings"][masking] = scores | {"linear_ar": settings}
    return report


def linear_ar_settings(data: HeldOutWindows, masking: str, seed: int) -> tuple[LinearAutoregression, dict]:
    """`LinearAutoregression` fitted on the training runs, its order and penalty chosen on the validation windows
    under masks of `masking` (`tune_linear_autoregression`), or the defaults when there are no validation windows.

    Returns:
        The model, and `{"order", "alpha", "tuned_on"}` (the validation subjects, or None for the defaults) with
        `"validation_r2"` and `"grid"` when tuned, or a `"note"` saying the defaults were used.
    """
    if len(data.validation_values):
        visible = ~data.validation_masks(masking, seed)
        model, choice = tune_linear_autoregression(data.train_runs, data.validation_values, visible)
        return model, {"tuned_on": data.validation_subjects, **choice}
    model = LinearAutoregression().fit(data.train_runs)
    note = (
        "no validation windows among the runs: the default order and penalty (linear_ar.DEFAULT_ORDER, DEFAULT_ALPHA)"
    )
    return model, {"order": model.order, "alpha": model.alpha, "tuned_on": None, "note": note}


def pooled_r2(_, sums) -> float:
    """R^2 of a set of windows from their summed (W, 4) sums [SSE, count, sum, sum of squares] (`scored_sums`); the
    unused first argument fits the `metric(targets, scores)` signature of `evaluation.statistics`."""
    return r_squared_from_sums(torch.as_tensor(sums).sum(0))


def compare_sums(sums_a, sums_b, subjects, *, num: int = NUM_BOOTSTRAP, seed: int = 0) -> dict:
    """R^2(a) - R^2(b) on the same windows: a subject-bootstrap 95 % interval and a paired permutation p that swaps
    the two predictors' windows subject by subject (`paired_comparison` over subjects)."""
    return paired_comparison(pooled_r2, subjects, sums_a, sums_b, subjects, scale="none", num=num, seed=seed)


def score_fills(fills, values, hidden, subjects, num_bootstrap, seed) -> dict:
    """Pooled R^2 of the hidden entries with a subject-bootstrap CI, and each predictor against the model.

    Each window contributes its sums of the hidden entries (`scored_sums`); the metric of a set of windows is the
    R^2 of their summed sums (`pooled_r2`), so a bootstrap resample of subjects pools exactly the windows it draws,
    and a permutation that swaps two predictors' windows of a subject swaps their sums (`compare_sums`).

    Returns:
        `{"methods": {name: {"metric", "value", "ci95", "per_subject", "p_vs_model"}}, "strongest_baseline",
        "comparisons": [{"a": "mnemodyn", "b", "difference", "ci95", "p", "p_holm", "unit", "num_units"}],
        "sums": {name: (W, 4) array}}`: `p_vs_model` is the unadjusted paired p, `p_holm` the same adjusted over the
        predictors of this masking.
    """
    sums = {name: scored_sums(prediction, values, hidden).numpy() for name, prediction in fills.items()}
    options = {"num": num_bootstrap, "seed": seed}
    methods, comparisons = {}, []
    for name, table in sums.items():
        methods[name] = {
            "metric": "r2",
            "value": pooled_r2(None, table),
            "ci95": list(bootstrap_ci(pooled_r2, subjects, table, subjects, **options)),
            "per_subject": {u: pooled_r2(None, table[subjects == u]) for u in sorted(set(subjects))},
            "p_vs_model": None,
        }
        if name != "mnemodyn":
            compared = compare_sums(sums["mnemodyn"], table, subjects, **options)
            comparisons.append({"a": "mnemodyn", "b": name} | compared)
            methods[name]["p_vs_model"] = compared["p"]
    for comparison, adjusted in zip(comparisons, holm([c["p"] for c in comparisons])):
        comparison["p_holm"] = adjusted
    strongest = max((n for n in methods if n != "mnemodyn"), key=lambda n: methods[n]["value"])
    return {"methods": methods, "strongest_baseline": strongest, "comparisons": comparisons, "sums": sums}


__all__ = [
    "MASKINGS",
    "HeldOutWindows",
    "compare_sums",
    "evaluate_reconstruction",
    "held_out_windows",
    "linear_ar_settings",
    "model_fill",
    "pooled_r2",
    "reconstruction_masks",
    "score_fills",
]
