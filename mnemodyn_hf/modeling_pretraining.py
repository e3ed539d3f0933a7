"""MnemoDyn pretraining: the backbone + a reconstruction head, with the objective of `config.pretraining_objective`
(masked, denoising or JEPA-style; each one class of `mnemodyn_hf.objectives`, found by name in `OBJECTIVES`).

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
  operator models. The loss scores hidden entries only, so nothing in it shapes the backbone's output on clean
  input, which is what downstream reads: `consistency_weight` > 0 adds that weight times the mean over real
  entries of (h_masked - h_clean)^2, the backbone's last hidden state on the corrupted input against the same
  backbone's on the clean input, with gradient through both (`MaskedObjective.consistency`).
* `"denoising"`: Gaussian noise of `noise_std` (normalised units) is added to every real entry; the loss is the MSE
  against the clean signal on all real entries.
* `"jepa"`: the same span masks give a context (visible entries) and a target (hidden entries). An EMA copy of the
  backbone (the target encoder, never trained by gradient) encodes the *full* clean input under `no_grad`
  (stop-gradient); the online backbone encodes the masked input and the head (the predictor) predicts the target
  encoder's `last_hidden_state` on the hidden entries. The target encoder is updated once per optimizer step
  (`after_optimizer_step`, which the training loop calls for every objective). Because the backbone is residual,
  its representation keeps the input and cannot collapse to a constant.

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
from .objectives import MASK_VALUE, OBJECTIVES, ForwardPass, gaussian_noise, hidden_entry_masks, span_masks


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
        #: The objective of `config.pretraining_objective` (`mnemodyn_hf.objectives.OBJECTIVES`).
        self.objective = OBJECTIVES[config.pretraining_objective](config)
        self.mnemodyn = MnemoDynModel(config)
        self.head = RECONSTRUCTION_HEAD_CLASSES[config.reconstruction_head](config)
        # `mask_input="interpolate_embedding"`: added to hidden entries (starts at 0: the interpolated path alone)
        self.mask_embedding = (
            nn.Parameter(torch.zeros(config.num_rois)) if config.mask_input == "interpolate_embedding" else None
        )
        self.target_encoder = None  # jepa's EMA copy of the backbone (`JepaObjective.add_modules`)
        self.objective.add_modules(self)
        self.post_init()
        self.objective.init_modules(self)

    def after_optimizer_step(self) -> None:
        """The objective's per-step hook (jepa: the EMA update of the target encoder). Call once per optimizer step."""
        self.objective.after_optimizer_step(self)

    def update_target_encoder(self) -> None:
        """JEPA: target <- ema_decay * target + (1 - ema_decay) * online backbone. Call once per optimizer step."""
        if self.target_encoder is None:
            raise ValueError(
                f"update_target_encoder is for pretraining_objective='jepa'; this model's objective is "
                f"{self.config.pretraining_objective!r}, which has no target encoder."
            )
        self.objective.after_optimizer_step(self)

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
        reconstruction, _, hidden_states = self._predict(corrupted, visible, attention_mask, output_hidden_states)
        return reconstruction, hidden_states

    def _predict(
        self,
        corrupted: torch.Tensor,
        visible: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_hidden_states: bool | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, ...] | None]:
        """`reconstruct`, with the backbone's last hidden state (None when bypassed) in the middle."""
        corrupted = backbone_input(corrupted, visible, self.config.mask_input, self.mask_embedding)
        if self.config.bypass_backbone:  # the ablation: what the head reconstructs without the backbone
            return self.head(corrupted, visible), None, None
        outputs = self.mnemodyn(corrupted, attention_mask, output_hidden_states=output_hidden_states, return_dict=True)
        return self.head(outputs.last_hidden_state, visible), outputs.last_hidden_state, outputs.hidden_states

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

        corruption = self.objective.corrupt(clean, real, corruption_seeds)
        reconstruction, backbone_output, hidden_states = self._predict(
            corruption.corrupted, corruption.visible, attention_mask, output_hidden_states
        )
        target = self.objective.target(self, clean, attention_mask)
        reconstruction, target = reconstruction.float(), target.float()  # the loss in fp32, also under bf16 autocast
        scored = corruption.scored
        step = ForwardPass(clean, attention_mask, real, corruption, reconstruction, target, backbone_output)
        loss = self.objective.loss(self, step)
        with torch.no_grad():
            mse = ((reconstruction - target) ** 2 * scored).sum() / scored.sum().clamp_min(1)
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
