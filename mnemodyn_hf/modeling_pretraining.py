"""MnemoDyn pretraining: the backbone + a reconstruction head, with masked, denoising and JEPA-style objectives.

Why not plain reconstruction: the backbone is residual (output = input + updates), so reconstructing the clean
input is solved by the identity (the reference's released model learned exactly that). Every objective here
hides or corrupts what it scores:

* `"masked"`: entries are hidden by the `mask_layout` (`hidden_entry_masks`): spans of `mask_span_frames` frames
  independently in every ROI (`"per_roi"`, about `mask_ratio` of each ROI's frames), the same spans over all ROIs
  (`"whole_frame"`), the last `mask_span_frames` frames (`"forecast"`), or one of the three per sample
  (`"mixed"`). Hidden entries are replaced by the **mask token `MASK_VALUE` = 0.0**, the corpus median of the
  centred signal in robust-scaled units (so the token carries no information about the hidden value), and the
  loss is the MSE on the hidden entries only. A model that copies its input predicts 0 there and scores an
  R^2 <= 0 (the identity trap is closed). Per-ROI masks can be filled frame by frame from the visible ROIs (a
  spatial regression); whole-frame and forecast masks leave only the temporal context, which is what the wavelet
  operator models.
* `"denoising"`: Gaussian noise of `noise_std` (normalised units) is added to every real entry; the loss is the MSE
  against the clean signal on all real entries.
* `"jepa"`: the same span masks give a context (visible entries) and a target (hidden entries). An EMA copy of the
  backbone (the target encoder, never trained by gradient) encodes the *full* clean input under `no_grad`
  (stop-gradient); the online backbone encodes the masked input and the head (the predictor) predicts the target
  encoder's `last_hidden_state` on the hidden entries. The target encoder is updated once per optimizer step
  (`update_target_encoder`). Because the backbone is residual, its representation keeps the input and cannot
  collapse to a constant.

Masks and noise are drawn per sample from `corruption_seeds` (one integer per sample), so they depend only on the
sample, never on the batch it lands in, the process or the device: a 2-process DDP run and a 1-process run with the
doubled batch see the same corruptions, and a resumed run the same ones as an uninterrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from .configuration_mnemodyn import MnemoDynConfig
from .masked_inputs import backbone_input
from .modeling_mnemodyn import MnemoDynModel, MnemoDynPreTrainedModel

#: The mask token: the value of hidden entries in the model's input (normalised units: the corpus median).
MASK_VALUE = 0.0


@dataclass
class MnemoDynForPreTrainingOutput(ModelOutput):
    """
    Output of [`MnemoDynForPreTraining`].

    Args:
        loss (`torch.FloatTensor` of shape `()`):
            The objective: the mean over samples of each sample's MSE on its scored entries (a per-sample mean, so
            the loss of a batch split over processes averages to the loss of the whole batch).
        reconstruction (`torch.FloatTensor` of shape `(batch_size, num_frames, num_rois)`):
            The head's prediction at every entry (only the scored entries are trained).
        target (`torch.FloatTensor` of shape `(batch_size, num_frames, num_rois)`):
            What the scored entries are compared with: the clean input (masked, denoising) or the target encoder's
            representation (jepa).
        scored_mask (`torch.BoolTensor` of shape `(batch_size, num_frames, num_rois)`):
            The entries the loss and metrics are computed on (hidden entries of real frames; all real entries for
            denoising).
        mse (`torch.FloatTensor` of shape `()`):
            MSE pooled over all scored entries of the batch (detached).
        r_squared (`torch.FloatTensor` of shape `()`):
            1 - SSE / SST pooled over the scored entries, SST around their mean (detached).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            The backbone's hidden states, with `output_hidden_states=True`.
    """

    loss: torch.FloatTensor | None = None
    reconstruction: torch.FloatTensor | None = None
    target: torch.FloatTensor | None = None
    scored_mask: torch.BoolTensor | None = None
    mse: torch.FloatTensor | None = None
    r_squared: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


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

    `"mixed"` gives sample b the layout `("per_roi", "whole_frame", "forecast")[seed_b % 3]`.
    """
    layouts = ("per_roi", "whole_frame", "forecast")
    chosen = [layouts[int(seed) % 3] if layout == "mixed" else layout for seed in seeds.tolist()]
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


def pooled_r_squared(prediction: torch.Tensor, target: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
    """1 - SSE / SST over the entries where `scored` is True, SST around the scored targets' mean."""
    values = target[scored].double()
    sse = ((prediction[scored].double() - values) ** 2).sum()
    sst = ((values - values.mean()) ** 2).sum()
    return (1.0 - sse / sst.clamp_min(1e-12)).float()


class MnemoDynReconstructionHead(nn.Module):
    """Per-frame residual head: (hidden, visible) (B, T, R) x 2 -> hidden + MLP([hidden, visible]) (B, T, R).

    `visible` (1 = the entry was shown unmasked) tells the head which values are the mask token; the MLP mixes
    ROIs (2R -> projection_size -> R), the backbone supplies the temporal context.
    """

    def __init__(self, config: MnemoDynConfig):
        super().__init__()
        self.input_projection = nn.Linear(2 * config.num_rois, config.projection_size)
        self.activation = ACT2FN[config.activation]
        self.output_projection = nn.Linear(config.projection_size, config.num_rois)
        self.output_projection.init_std = config.initializer_range  # the head starts near the identity

    def forward(self, hidden: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        update = self.output_projection(self.activation(self.input_projection(torch.cat([hidden, visible], dim=-1))))
        return hidden + update


class MnemoDynPerRoiHead(nn.Module):
    """Per-ROI affine head: (hidden, visible) -> scale_r * hidden + shift_r, (B, T, R).

    It mixes neither ROIs nor frames and ignores `visible`, so a hidden entry can only be predicted from what the
    backbone put in that ROI's output at that frame: the whole reconstruction is the backbone's work.
    """

    def __init__(self, config: MnemoDynConfig):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(config.num_rois))
        self.shift = nn.Parameter(torch.zeros(config.num_rois))

    def forward(self, hidden: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        return hidden * self.scale + self.shift


RECONSTRUCTION_HEAD_CLASSES = {"frame_mlp": MnemoDynReconstructionHead, "per_roi": MnemoDynPerRoiHead}


class MnemoDynForPreTraining(MnemoDynPreTrainedModel):
    """
    MnemoDyn backbone (`self.mnemodyn`) with a reconstruction head and the objective of
    `config.pretraining_objective` (see the module docstring). The loss is computed inside, on the scored entries.

    Example:

    ```python
    >>> import torch
    >>> from mnemodyn_hf import MnemoDynConfig, MnemoDynForPreTraining
    >>> config = MnemoDynConfig(num_rois=10, num_layers=1, latent_channels=8, context_length=64, wavelet_levels=3)
    >>> model = MnemoDynForPreTraining(config)
    >>> out = model(torch.randn(2, 64, 10), corruption_seeds=torch.tensor([0, 1]))
    >>> out.loss.shape, out.reconstruction.shape, out.scored_mask.shape
    (torch.Size([]), torch.Size([2, 64, 10]), torch.Size([2, 64, 10]))
    ```
    """

    def __init__(self, config: MnemoDynConfig):
        super().__init__(config)
        self.mnemodyn = MnemoDynModel(config)
        self.head = RECONSTRUCTION_HEAD_CLASSES[config.reconstruction_head](config)
        # `mask_input="interpolate_embedding"`: added to hidden entries (starts at 0: the interpolated path alone)
        self.mask_embedding = (
            nn.Parameter(torch.zeros(config.num_rois)) if config.mask_input == "interpolate_embedding" else None
        )
        self.target_encoder = None
        if config.pretraining_objective == "jepa":
            self.target_encoder = MnemoDynModel(config)
            self.target_encoder.requires_grad_(False)
        self.post_init()
        if self.target_encoder is not None:
            self.target_encoder.load_state_dict(self.mnemodyn.state_dict())

    @torch.no_grad()
    def update_target_encoder(self) -> None:
        """JEPA: target <- ema_decay * target + (1 - ema_decay) * online backbone. Call once per optimizer step."""
        if self.target_encoder is None:
            raise ValueError(
                f"update_target_encoder is for pretraining_objective='jepa'; this model's objective is "
                f"{self.config.pretraining_objective!r}, which has no target encoder."
            )
        decay = self.config.ema_decay
        for target, online in zip(self.target_encoder.parameters(), self.mnemodyn.parameters(), strict=True):
            target.lerp_(online.detach(), 1.0 - decay)

    def reconstruct(
        self,
        corrupted: torch.Tensor,
        visible: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """The head's prediction (B, T, R) from the corrupted input and its visibility mask (1 = shown), and the
        backbone's hidden states when asked; with `config.bypass_backbone` the head reads the input itself. The
        backbone (or the bypassed head) reads the input as `config.mask_input` prescribes (`masked_inputs`)."""
        corrupted = backbone_input(corrupted, visible, self.config.mask_input, self.mask_embedding)
        if self.config.bypass_backbone:  # the ablation: what the head reconstructs without the backbone
            return self.head(corrupted, visible), None
        outputs = self.mnemodyn(corrupted, attention_mask, output_hidden_states=output_hidden_states, return_dict=True)
        return self.head(outputs.last_hidden_state, visible), outputs.hidden_states

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        corruption_seeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MnemoDynForPreTrainingOutput | tuple:
        """
        Args:
            input_values: (B, T, R) clean, normalised parcellated BOLD.
            attention_mask: (B, T), 1 for real frames and 0 for right padding.
            corruption_seeds: (B,) integer seed of each sample's mask or noise; drawn from torch's global RNG when
                omitted (then reproducible only through `torch.manual_seed`).
            output_hidden_states: also return the backbone's hidden states.
            return_dict: return a [`MnemoDynForPreTrainingOutput`] (default) instead of a tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        clean = torch.as_tensor(input_values)
        if clean.ndim != 3:
            raise ValueError(f"input_values must be (batch, frames, rois); got shape {tuple(clean.shape)}.")
        batch, frames, rois = clean.shape
        if corruption_seeds is None:
            corruption_seeds = torch.randint(0, 2**62, (batch,))
        if len(corruption_seeds) != batch:
            raise ValueError(
                f"corruption_seeds has {len(corruption_seeds)} seeds for a batch of {batch}; give one per sample."
            )
        parameter = next(self.parameters())
        clean = clean.to(device=parameter.device, dtype=parameter.dtype)
        real = torch.ones(batch, frames, 1, dtype=torch.bool, device=clean.device)
        if attention_mask is not None:
            real = torch.as_tensor(attention_mask, device=clean.device)[..., None].bool()

        if self.config.pretraining_objective == "denoising":
            noise = gaussian_noise(corruption_seeds.cpu(), frames, rois).to(clean)
            corrupted = clean + self.config.noise_std * noise * real
            visible = torch.ones_like(clean)
            scored = real.expand_as(clean)
        else:
            lengths = real[..., 0].sum(1).cpu()
            config = self.config
            hidden_entries = hidden_entry_masks(
                corruption_seeds.cpu(),
                lengths,
                frames,
                rois,
                config.mask_layout,
                config.mask_ratio,
                config.mask_span_frames,
            )
            hidden_entries = hidden_entries.to(clean.device)
            corrupted = torch.where(hidden_entries, torch.full_like(clean, MASK_VALUE), clean)
            visible = (~hidden_entries).to(clean.dtype)
            scored = hidden_entries & real

        reconstruction, hidden_states = self.reconstruct(corrupted, visible, attention_mask, output_hidden_states)
        if self.target_encoder is not None:
            with torch.no_grad():
                target = self.target_encoder(clean, attention_mask, return_dict=True).last_hidden_state.detach()
        else:
            target = clean

        reconstruction, target = reconstruction.float(), target.float()  # the loss in fp32, also under bf16 autocast
        squared_error = (reconstruction - target) ** 2 * scored
        per_sample_count = scored.flatten(1).sum(1).clamp_min(1)
        loss = (squared_error.flatten(1).sum(1) / per_sample_count).mean()
        with torch.no_grad():
            mse = squared_error.sum() / scored.sum().clamp_min(1)
            r_squared = pooled_r_squared(reconstruction.detach(), target, scored)
        output = MnemoDynForPreTrainingOutput(
            loss=loss,
            reconstruction=reconstruction,
            target=target,
            scored_mask=scored,
            mse=mse,
            r_squared=r_squared,
            hidden_states=hidden_states,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "MASK_VALUE",
    "MnemoDynForPreTraining",
    "MnemoDynForPreTrainingOutput",
    "MnemoDynPerRoiHead",
    "MnemoDynReconstructionHead",
    "gaussian_noise",
    "hidden_entry_masks",
    "pooled_r_squared",
    "span_masks",
]
