"""`AdaptiveConditionalMean`: the spatial conditional mean under a covariance adapted to each window, a
masked-reconstruction baseline that reads the subject's own connectivity from the window's visible entries.

Why: the group covariance of `SpatialConditionalMean` is everybody's connectivity; a subject's own differs, and
knowing it fills hidden ROIs much better (benchmarks/reconstruction_ceiling.py: on held-out ABIDE subjects the
covariance of the other frames of the same run lifts per-ROI R^2 from 0.580 to 0.718). This predictor estimates it
without reading a hidden value, in the style of one EM step per refinement (conventions of `fit` / `fill` as in
`spatial_predictors`).
"""

from __future__ import annotations

import torch

from .spatial_predictors import MaskFunction, SeriesList, SpatialConditionalMean, _as_runs, _check_fill_inputs

#: Weights of the window's own covariance tried by `AdaptiveConditionalMean.fit`.
DEFAULT_WEIGHTS = (0.25, 0.5, 0.75)


def mixed_covariance_predictor(
    group: SpatialConditionalMean, own: torch.Tensor, weight: float
) -> SpatialConditionalMean:
    """The conditional mean under (1 - w) S_group + w `own` (R, R), about the group mean, its eigenvalues floored at
    1e-3 of their mean so the mixture stays positive definite."""
    eigenvalues, vectors = torch.linalg.eigh((1 - weight) * group.covariance_ + weight * own.double())
    eigenvalues = eigenvalues.clamp_min(1e-3 * float(eigenvalues.clamp_min(0).mean()))
    covariance = (vectors * eigenvalues) @ vectors.T
    return SpatialConditionalMean.from_moments(group.mean_, (covariance + covariance.T) / 2)


class AdaptiveConditionalMean:
    """Gaussian conditional mean of the hidden ROIs of a frame given its visible ROIs, under the covariance

        S_w = (1 - w) S_group + w S_window,

    S_group the Ledoit-Wolf covariance of the training runs (`SpatialConditionalMean`) and S_window the second
    moments (about the group mean) of the window being filled, its hidden entries taken from the previous fill:
    first the group conditional mean, then `steps` refills under S_w. Eigenvalues of S_w are floored at 1e-3 of their
    mean so it stays positive definite. Every window is adapted on its own frames only (the context a model sees).

    `fit(runs, mask_fn, window_frames)` fits S_group and picks w from `weights` on held-out training runs: the last
    `validation_fraction` of them (at least one) are cut into windows of `window_frames`, masked by `mask_fn` (the
    evaluation's mask distribution), filled with S_group fitted on the others, and scored; S_group is then refitted
    on all runs. The test data are never used.
    """

    def __init__(self, weights=DEFAULT_WEIGHTS, steps: int = 2, validation_fraction: float = 0.1):
        if not weights or not all(0.0 <= w <= 1.0 for w in weights):
            raise ValueError(f"weights must be a non-empty sequence of values in [0, 1], got {weights}.")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}.")
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
        self.weights = tuple(weights)
        self.steps = steps
        self.validation_fraction = validation_fraction
        self.group_: SpatialConditionalMean | None = None
        self.weight_: float | None = None
        self.validation_sse_: dict[float, float] | None = None

    @property
    def num_rois(self) -> int | None:
        return None if self.group_ is None else self.group_.num_rois

    def fit(self, series_list: SeriesList, mask_fn: MaskFunction, window_frames: int) -> AdaptiveConditionalMean:
        """Fit on training runs (a list of (T_i, R) arrays) and choose w on held-out ones (see the class)."""
        runs = _as_runs(series_list)
        if len(runs) < 2:
            raise ValueError("fit needs at least 2 training runs: one or more are held out to choose the weight.")
        held_out = max(1, round(self.validation_fraction * len(runs)))
        windows = [
            run[start : start + window_frames]
            for run in runs[-held_out:]
            for start in range(0, len(run) - window_frames + 1, window_frames)
        ]
        if not windows:
            raise ValueError(f"no held-out training run holds a window of {window_frames} frames.")
        values = torch.stack(windows)
        visible = torch.as_tensor(mask_fn(values.clone()))
        self.group_ = SpatialConditionalMean().fit(runs[:-held_out])
        hidden = ~visible
        self.validation_sse_ = {}
        for weight in self.weights:
            self.weight_ = weight
            error = (self.fill(values, visible) - values)[hidden]
            self.validation_sse_[weight] = float((error.double() ** 2).sum())
        self.weight_ = min(self.validation_sse_, key=self.validation_sse_.get)
        self.group_ = SpatialConditionalMean().fit(runs)
        return self

    def fill(self, values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """(B, T, R) values and bool visibility -> (B, T, R): hidden entries replaced by their adapted conditional
        mean, window by window."""
        if self.group_ is None:
            raise ValueError("AdaptiveConditionalMean is not fitted: call fit(training_runs, mask_fn, window_frames).")
        _check_fill_inputs(values, visible, self.num_rois, type(self).__name__)
        group = self.group_
        filled = group.fill(values.detach().cpu().double(), visible.cpu())
        for index in range(len(filled)):
            window, seen = filled[index : index + 1], visible[index : index + 1].cpu()
            if not bool((seen.any(-1) & ~seen.all(-1)).any()):
                continue  # no frame with both visible and hidden ROIs: the group fill is already the answer
            for _ in range(self.steps):
                deviations = (window[0] - group.mean_).double()
                own = deviations.T @ deviations / len(deviations)
                window = mixed_covariance_predictor(group, own, self.weight_).fill(window, seen)
            filled[index] = window[0]
        return torch.where(visible, values, filled.to(device=values.device, dtype=values.dtype))


__all__ = ["DEFAULT_WEIGHTS", "AdaptiveConditionalMean", "mixed_covariance_predictor"]
