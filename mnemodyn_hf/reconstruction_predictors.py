"""Training-free predictors of corrupted entries, and the pooled R^2 every reconstruction is scored with; shared by
pretraining validation (`mnemodyn_hf.training.validation`) and evaluation (`mnemodyn_hf.evaluation.reconstruction`).

`TRIVIAL_PREDICTORS` maps the names an objective lists in `baselines` (`mnemodyn_hf.objectives`) to functions
`(clean, corrupted, observed) -> prediction`, all (B, T, R), `observed` True where the entry is real and unscored:

* `roi_mean`: each hidden entry is the mean of its ROI's observed frames in the window (`roi_mean_fill`);
* `interpolation`: the straight line between the ROI's nearest observed frames before and after, the nearest
  observed value at the window's edges (`linear_interpolation_fill`, also the backbone's interpolated input);
* `noisy_input`: the corrupted input itself (what a copying model predicts).

A ROI with no observed frame is filled with 0 (the corpus median in normalised units). Predictors fitted on training
subjects (cross-ROI Gaussian conditional mean, spatio-temporal ridge, linear AR) are in `mnemodyn_hf.evaluation`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .masked_inputs import linear_interpolation_fill

#: (clean, corrupted, observed) -> prediction, all (B, T, R).
TrivialPredictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def roi_mean_fill(values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(B, T, R) values and bool visibility -> (B, T, R): hidden entries replaced by their ROI's visible mean."""
    weights = visible.to(values.dtype)
    mean = (values * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1)
    return torch.where(visible, values, mean.expand_as(values))


TRIVIAL_PREDICTORS: dict[str, TrivialPredictor] = {
    "roi_mean": lambda clean, corrupted, observed: roi_mean_fill(clean, observed),
    "interpolation": lambda clean, corrupted, observed: linear_interpolation_fill(clean, observed),
    "noisy_input": lambda clean, corrupted, observed: corrupted,
}


def scored_sums(prediction: torch.Tensor, target: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """Per-sample sums over scored entries: (B, T, R) x 3 -> (B, 4) [SSE, count, sum target, sum target^2]."""
    weights = scored.double()
    prediction, target = prediction.double(), target.double()
    return torch.stack(
        [
            (((prediction - target) ** 2) * weights).flatten(1).sum(1),
            weights.flatten(1).sum(1),
            (target * weights).flatten(1).sum(1),
            (target**2 * weights).flatten(1).sum(1),
        ],
        dim=1,
    )


def r_squared_from_sums(sums: torch.Tensor) -> float:
    """Pooled R^2 from summed [SSE, count, sum target, sum target^2]."""
    sse, count, total, squares = (float(value) for value in sums)
    return 1.0 - sse / max(squares - total**2 / max(count, 1.0), 1e-12)


__all__ = [
    "TRIVIAL_PREDICTORS",
    "TrivialPredictor",
    "linear_interpolation_fill",
    "r_squared_from_sums",
    "roi_mean_fill",
    "scored_sums",
]
