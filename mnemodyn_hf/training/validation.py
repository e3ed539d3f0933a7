"""Validation of a pretraining run: loss and pooled R^2 of the model beside trivial predictors on the same
corruptions, from per-sample sums gathered over processes."""

from __future__ import annotations

import torch
from accelerate import Accelerator

from ..modeling_pretraining import gaussian_noise
from .trivial_predictors import linear_interpolation_fill, roi_mean_fill


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


@torch.no_grad()
def validate(model, loader, accelerator: Accelerator, noise_std: float) -> dict[str, float]:
    """Validation loss and pooled R^2 of the model and of the trivial predictors on the same corruptions.

    masked: per-ROI mean and linear interpolation of the visible frames; denoising: the noisy input itself.
    """
    model.eval()
    objective = accelerator.unwrap_model(model).config.pretraining_objective
    totals: dict[str, torch.Tensor] = {}
    losses = []
    for batch in loader:
        output = model(**batch)
        clean, scored = batch["input_values"].to(output.target), output.scored_mask
        candidates = {"model": output.reconstruction}
        if objective == "masked":
            real = batch["attention_mask"].bool()[..., None].to(scored.device)
            visible = ~scored & real
            candidates["roi_mean"] = roi_mean_fill(clean, visible)
            candidates["interpolation"] = linear_interpolation_fill(clean, visible)
        elif objective == "denoising":
            noise = gaussian_noise(batch["corruption_seeds"].cpu(), *clean.shape[1:]).to(clean)
            candidates["noisy_input"] = clean + noise_std * noise * batch["attention_mask"][..., None].to(clean)
        per_sample = {name: scored_sums(values, output.target, scored) for name, values in candidates.items()}
        per_sample["loss"] = (per_sample["model"][:, 0] / per_sample["model"][:, 1].clamp_min(1))[:, None]
        gathered = accelerator.gather_for_metrics(per_sample)
        losses.append(gathered.pop("loss"))
        for name, values in gathered.items():
            totals[name] = totals.get(name, 0) + values.sum(0)
    model.train()
    metrics = {"val/loss": float(torch.cat(losses).mean()), "val/mse": float(totals["model"][0] / totals["model"][1])}
    metrics.update({f"val/r2_{name}": r_squared_from_sums(sums) for name, sums in totals.items()})
    return metrics


__all__ = ["r_squared_from_sums", "scored_sums", "validate"]
