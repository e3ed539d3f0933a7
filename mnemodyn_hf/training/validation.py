"""Validation of a pretraining run: loss and pooled R^2 of the model beside the trivial predictors its objective
names (`Objective.baselines`, `mnemodyn_hf.reconstruction_predictors`) on the same corruptions, from per-sample sums
gathered over processes."""

from __future__ import annotations

import torch
from accelerate import Accelerator

from ..reconstruction_predictors import TRIVIAL_PREDICTORS, r_squared_from_sums, scored_sums


@torch.no_grad()
def validate(model, loader, accelerator: Accelerator) -> dict[str, float]:
    """Validation loss and pooled R^2 of the model and of its objective's trivial predictors on the same
    corruptions (the objective's `corrupt` with the batch's seeds), each scored on the model's scored entries."""
    model.eval()
    objective = accelerator.unwrap_model(model).objective
    totals: dict[str, torch.Tensor] = {}
    losses = []
    for batch in loader:
        output = model(**batch)
        clean, scored = batch["input_values"].to(output.target), output.scored_mask
        candidates = {"model": output.reconstruction}
        if objective.baselines:
            real = batch["attention_mask"].bool()[..., None].to(scored.device)
            corrupted = objective.corrupt(clean, real, batch["corruption_seeds"]).corrupted
            observed = ~scored & real
            for name in objective.baselines:
                candidates[name] = TRIVIAL_PREDICTORS[name](clean, corrupted, observed)
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


__all__ = ["validate"]
