"""Pretraining objectives of `MnemoDynForPreTraining`, one class each, found by name in `OBJECTIVES`.

An objective says, for a batch of clean windows:

* `corrupt(clean, real, seeds)`: what the model is given (`Corruption`: the corrupted input, which entries are shown
  as they are, which entries the loss scores), drawn per sample from its seed;
* `target(model, clean, attention_mask)`: what the scored entries are compared with;
* `loss(model, step)`: the training loss of a forward pass (`ForwardPass`);
* `baselines`: the trivial predictors (names in `mnemodyn_hf.reconstruction_predictors.TRIVIAL_PREDICTORS`) that
  validation and evaluation score beside the model on the same corruptions;
* `after_optimizer_step(model)`: what changes once per optimizer step besides the optimizer's update;
* `add_modules(model)` / `init_modules(model)`: the modules the objective adds to the model, before and after the
  model's weight initialisation;
* `task_type`: the model card's task type for its held-out metric.

A new objective is a subclass of `Objective` (its own module) and one line, `OBJECTIVES["name"] = TheClass`; the
config, the model's forward, the training loop, validation, the model card and evaluation look it up there.

The three objectives (see `mnemodyn_hf.modeling_pretraining` for why each hides what it scores):

* `"masked"` (`MaskedObjective`): entries hidden by `hidden_entry_masks` hold the mask token `MASK_VALUE`; the loss
  is the MSE on the hidden entries of real frames. With `consistency_weight` > 0 the loss adds that weight times
  the mean over real entries of (h_masked - h_clean)^2: h_masked is the backbone's last hidden state on the
  corrupted input, h_clean the same backbone's on the clean input, with gradient through both, so that
  pretraining also shapes the output on clean input (what downstream reads). Nothing hidden: the term is 0.
* `"denoising"` (`DenoisingObjective`): Gaussian noise of `noise_std` on every real entry; the loss is the MSE
  against the clean signal on all real entries.
* `"jepa"` (`JepaObjective`): the masked objective's corruption; the target is an EMA target encoder's
  `last_hidden_state` on the clean input (no gradient), updated once per optimizer step.

Every loss is the mean over samples of each sample's mean over its entries, so a batch split over processes
averages to the loss of the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from torch import nn
    from transformers import PreTrainedConfig

#: The mask token: the value of hidden entries in the model's input (normalised units: the corpus median).
MASK_VALUE = 0.0
#: The layouts `"mixed"` draws from, by `seed % 3`.
SINGLE_MASK_LAYOUTS = ("per_roi", "whole_frame", "forecast")


def span_masks(seeds: torch.Tensor, num_frames: int, num_rois: int, mask_ratio: float, span: int) -> torch.Tensor:
    """Hidden-entry masks, one per seed: (B,) int seeds -> (B, T, R) bool, True = hidden.

    In every ROI a span of `span` frames starts at each frame with probability p = 1 - (1 - ratio)^(1/span),
    spans starting up to `span - 1` frames before the window included, so every frame is hidden with probability
    `mask_ratio`. Drawn on the CPU from a generator seeded with the sample's seed: the same seed gives the same
    mask everywhere.
    """
    start_probability = 1.0 - (1.0 - mask_ratio) ** (1.0 / span)
    masks = []
    for seed in seeds.tolist():
        generator = torch.Generator().manual_seed(int(seed))
        starts = (torch.rand(num_rois, num_frames + span - 1, generator=generator) < start_probability).float()
        # frame t is hidden when a span started in (t - span, t]: a running maximum over `span` start positions
        masks.append(torch.nn.functional.max_pool1d(starts[None], span, stride=1)[0].T > 0)
    return torch.stack(masks)


def hidden_entry_masks(
    seeds: torch.Tensor,
    lengths: torch.Tensor,
    num_frames: int,
    num_rois: int,
    layout: str,
    ratio: float,
    span: int,
) -> torch.Tensor:
    """The entries the masked objectives hide (see `MnemoDynConfig.mask_layout`): (B,) seeds and real-frame counts
    -> (B, num_frames, num_rois) bool, True = hidden; padded frames are never hidden.

    `"mixed"` gives sample b the layout `SINGLE_MASK_LAYOUTS[seed_b % 3]`.
    """
    chosen = [SINGLE_MASK_LAYOUTS[int(seed) % 3] if layout == "mixed" else layout for seed in seeds.tolist()]
    masks = torch.zeros(len(seeds), num_frames, num_rois, dtype=torch.bool)
    for index, (seed, length, sample_layout) in enumerate(zip(seeds[:, None], lengths.tolist(), chosen)):
        if sample_layout == "per_roi":
            masks[index] = span_masks(seed, num_frames, num_rois, ratio, span)[0]
        elif sample_layout == "whole_frame":
            masks[index] = span_masks(seed, num_frames, 1, ratio, span)[0].expand(num_frames, num_rois)
        else:  # forecast: the last `span` real frames (at most half the run, so a past is always visible)
            horizon = min(span, int(length) // 2)
            masks[index, int(length) - horizon : int(length)] = True
    frame_index = torch.arange(num_frames)[None, :, None]
    return masks & (frame_index < lengths.cpu()[:, None, None])


def gaussian_noise(seeds: torch.Tensor, num_frames: int, num_rois: int) -> torch.Tensor:
    """Standard normal noise, one (T, R) draw per seed: (B,) -> (B, T, R), float32 on the CPU."""
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds.tolist()]
    return torch.stack([torch.randn(num_frames, num_rois, generator=generator) for generator in generators])


@dataclass
class Corruption:
    """What an objective makes of a clean (B, T, R) batch."""

    corrupted: torch.Tensor  # (B, T, R): the input the model is given
    visible: torch.Tensor  # (B, T, R) float: 1 = the entry is shown as it is
    scored: torch.Tensor  # (B, T, R) bool: the entries the loss and the metrics are computed on


@dataclass
class ForwardPass:
    """One forward pass of `MnemoDynForPreTraining`, what an objective's `loss` reads."""

    clean: torch.Tensor  # (B, T, R): the clean input
    attention_mask: torch.Tensor | None  # (B, T): 1 = real frame
    real: torch.Tensor  # (B, T, 1) bool: the real frames
    corruption: Corruption
    reconstruction: torch.Tensor  # (B, T, R) float32: the head's prediction
    target: torch.Tensor  # (B, T, R) float32
    backbone_output: torch.Tensor | None  # (B, T, R): the backbone's last hidden state (None with bypass_backbone)


def scored_mse(prediction: torch.Tensor, target: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """The mean over samples of each sample's MSE on its scored entries (0 for a sample with none)."""
    squared_error = (prediction - target) ** 2 * scored
    return (squared_error.flatten(1).sum(1) / scored.flatten(1).sum(1).clamp_min(1)).mean()


def hide_entries(clean: torch.Tensor, hidden: torch.Tensor) -> Corruption:
    """The masked objectives' corruption of (B, T, R) `clean` under a bool `hidden` mask (padding never hidden):
    hidden entries hold `MASK_VALUE`, and they are the scored ones."""
    corrupted = torch.where(hidden, torch.full_like(clean, MASK_VALUE), clean)
    return Corruption(corrupted=corrupted, visible=(~hidden).to(clean.dtype), scored=hidden)


class Objective:
    """A pretraining objective (see the module docstring); `config` is the model's `MnemoDynConfig`."""

    #: Trivial predictors validation and evaluation score beside the model (`TRIVIAL_PREDICTORS` names).
    baselines: ClassVar[tuple[str, ...]] = ()
    #: The model card's task type of the held-out metric.
    task_type: ClassVar[str] = "masked-reconstruction"

    def __init__(self, config: PreTrainedConfig) -> None:
        self.config = config

    def add_modules(self, model: nn.Module) -> None:
        """Add the modules the objective needs to `model`, before its weights are initialised."""

    def init_modules(self, model: nn.Module) -> None:
        """Set the objective's modules after the model's weights were initialised."""

    def corrupt(self, clean: torch.Tensor, real: torch.Tensor, seeds: torch.Tensor) -> Corruption:
        """(B, T, R) clean values, (B, T, 1) bool real frames and (B,) seeds -> the `Corruption`."""
        raise NotImplementedError

    def target(self, model: nn.Module, clean: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """What the scored entries are compared with (default: the clean input)."""
        return clean

    def loss(self, model: nn.Module, step: ForwardPass) -> torch.Tensor:
        """The training loss (default: `scored_mse` of the reconstruction on the scored entries)."""
        return scored_mse(step.reconstruction, step.target, step.corruption.scored)

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Called by the training loop once per optimizer step, after the optimizer's update."""


class MaskedObjective(Objective):
    """Reconstruct the entries hidden by `config.mask_layout`, optionally with a clean-input consistency term."""

    baselines = ("roi_mean", "interpolation")

    def corrupt(self, clean: torch.Tensor, real: torch.Tensor, seeds: torch.Tensor) -> Corruption:
        config = self.config
        lengths = real[..., 0].sum(1).cpu()
        frames, rois = clean.shape[1:]
        hidden = hidden_entry_masks(
            seeds.cpu(), lengths, frames, rois, config.mask_layout, config.mask_ratio, config.mask_span_frames
        )
        return hide_entries(clean, hidden.to(clean.device))

    def loss(self, model: nn.Module, step: ForwardPass) -> torch.Tensor:
        loss = super().loss(model, step)
        if self.config.consistency_weight > 0:
            loss = loss + self.config.consistency_weight * self.consistency(model, step)
        return loss

    @staticmethod
    def consistency(model: nn.Module, step: ForwardPass) -> torch.Tensor:
        """Mean over samples of the mean over real entries of (h_masked - h_clean)^2, gradient through both."""
        clean_output = model.mnemodyn(step.clean, step.attention_mask, return_dict=True).last_hidden_state
        real = step.real.expand_as(step.clean)
        return scored_mse(step.backbone_output.float(), clean_output.float(), real)


class DenoisingObjective(Objective):
    """Reconstruct the clean signal from a copy with Gaussian noise of `config.noise_std` on every real entry."""

    baselines = ("noisy_input",)
    task_type = "denoising"

    def corrupt(self, clean: torch.Tensor, real: torch.Tensor, seeds: torch.Tensor) -> Corruption:
        noise = gaussian_noise(seeds.cpu(), *clean.shape[1:]).to(clean)
        corrupted = clean + self.config.noise_std * noise * real
        return Corruption(corrupted=corrupted, visible=torch.ones_like(clean), scored=real.expand_as(clean))


class JepaObjective(MaskedObjective):
    """Predict an EMA target encoder's representation of the hidden entries (stop-gradient target)."""

    baselines = ()

    def add_modules(self, model: nn.Module) -> None:
        model.target_encoder = type(model.mnemodyn)(model.config)
        model.target_encoder.requires_grad_(False)

    def init_modules(self, model: nn.Module) -> None:
        model.target_encoder.load_state_dict(model.mnemodyn.state_dict())

    def target(self, model: nn.Module, clean: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            return model.target_encoder(clean, attention_mask, return_dict=True).last_hidden_state.detach()

    @torch.no_grad()
    def after_optimizer_step(self, model: nn.Module) -> None:
        """target <- ema_decay * target + (1 - ema_decay) * online backbone."""
        decay = self.config.ema_decay
        for target, online in zip(model.target_encoder.parameters(), model.mnemodyn.parameters(), strict=True):
            target.lerp_(online.detach(), 1.0 - decay)


#: Objective name (`MnemoDynConfig.pretraining_objective`) -> class.
OBJECTIVES: dict[str, type[Objective]] = {
    "masked": MaskedObjective,
    "denoising": DenoisingObjective,
    "jepa": JepaObjective,
}


__all__ = [
    "MASK_VALUE",
    "OBJECTIVES",
    "Corruption",
    "DenoisingObjective",
    "ForwardPass",
    "JepaObjective",
    "MaskedObjective",
    "Objective",
    "gaussian_noise",
    "hidden_entry_masks",
    "hide_entries",
    "scored_mse",
    "span_masks",
]
