"""Task models: the MnemoDyn backbone + a pooled MLP head, trained with `transformers.Trainer`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import ModelOutput

from .configuration_mnemodyn import MnemoDynConfig
from .modeling_mnemodyn import MnemoDynModel, MnemoDynPreTrainedModel, masked_mean_and_std


def pool_frames(hidden: torch.Tensor, attention_mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Summarise (B, T, R) over real frames: "mean" (B, R), "mean_std" (B, 2R), "max" (B, R) or "correlation"
    (B, R(R-1)/2: the Fisher-z correlations between the R channels, second-order, as functional connectivity)."""
    frame_mask = None if attention_mask is None else attention_mask.to(hidden.dtype)
    if pooling == "correlation":
        return masked_correlations(hidden, frame_mask)
    if pooling == "max":
        if frame_mask is None:
            return hidden.amax(dim=1)
        return hidden.masked_fill(frame_mask[..., None] == 0, float("-inf")).amax(dim=1)
    pooled = masked_mean_and_std(hidden, frame_mask)
    return pooled[:, : hidden.shape[-1]] if pooling == "mean" else pooled


#: Correlations are clipped to +-(1 - FISHER_CLIP) before the Fisher z transform (arctanh of 1 is infinite).
FISHER_CLIP = 1e-6


def masked_correlations(hidden: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Fisher-z Pearson correlations between channels over real frames: (B, T, K) -> (B, K(K-1)/2), upper triangle.
    A constant channel correlates 0 with every other."""
    weights = hidden.new_ones(hidden.shape[:2]) if frame_mask is None else frame_mask
    weights = weights[..., None]
    centred = (hidden - (hidden * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True)) * weights
    covariance = centred.transpose(1, 2) @ centred
    scale = torch.sqrt(torch.diagonal(covariance, dim1=1, dim2=2).clamp_min(1e-12))
    correlation = covariance / (scale[:, :, None] * scale[:, None, :])
    rows, columns = torch.triu_indices(hidden.shape[-1], hidden.shape[-1], offset=1, device=hidden.device)
    return torch.atanh(correlation[:, rows, columns].clamp(-1 + FISHER_CLIP, 1 - FISHER_CLIP))


def pooled_size(config: MnemoDynConfig) -> int:
    """Width of the pooled features the head reads (see `pool_frames` and `head_pooling_components`)."""
    if config.head_pooling == "correlation":
        channels = config.head_pooling_components or config.num_rois
        return channels * (channels - 1) // 2
    return 2 * config.num_rois if config.head_pooling == "mean_std" else config.num_rois


class MnemoDynPredictionHead(nn.Module):
    """Pooled features (B, P) -> (B, num_outputs): LayerNorm, Linear, GELU, Dropout, Linear."""

    def __init__(self, config: MnemoDynConfig, num_outputs: int):
        super().__init__()
        pooled = pooled_size(config)
        self.norm = nn.LayerNorm(pooled)
        self.hidden = nn.Linear(pooled, config.head_hidden_size)
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(config.head_dropout)
        self.output = nn.Linear(config.head_hidden_size, num_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(self.activation(self.hidden(self.norm(pooled)))))


class MnemoDynRoiAdapter(nn.Linear):
    """(B, T, adapter_input_rois) -> (B, T, num_rois): task data from another atlas into the backbone's ROI space.

    LeCun-normal initialisation (the package default for Linear layers) keeps unit-scale inputs unit-scale.
    """

    def __init__(self, config: MnemoDynConfig):
        super().__init__(config.adapter_input_rois, config.num_rois)


class _MnemoDynTaskModel(MnemoDynPreTrainedModel):
    """[ROI adapter] + backbone + head; freezes the backbone (but its last `num_unfrozen_layers`) when
    `freeze_backbone`; the adapter and the head always train."""

    accepts_loss_kwargs = False

    def __init__(self, config: MnemoDynConfig, num_outputs: int):
        super().__init__(config)
        self.roi_adapter = None if config.adapter_input_rois is None else MnemoDynRoiAdapter(config)
        self.mnemodyn = MnemoDynModel(config)
        components = config.head_pooling_components if config.head_pooling == "correlation" else None
        # a learned ROI -> component projection keeps a correlation head small at 450 ROIs; it trains with the head
        self.pooling_projection = None if components is None else nn.Linear(config.num_rois, components, bias=False)
        self.head = MnemoDynPredictionHead(config, num_outputs)
        self.post_init()
        if config.freeze_backbone:
            self.freeze_backbone(config.num_unfrozen_layers)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As `PreTrainedModel.from_pretrained`, then re-applies `freeze_backbone` (loading replaces parameters)."""
        model = super().from_pretrained(*args, **kwargs)
        if model.config.freeze_backbone:
            model.freeze_backbone(model.config.num_unfrozen_layers)
        return model

    def freeze_backbone(self, num_unfrozen_layers: int = 0) -> None:
        """Stop gradients to the backbone, except its last `num_unfrozen_layers` layers."""
        for parameter in self.mnemodyn.parameters():
            parameter.requires_grad_(False)
        for layer in self.mnemodyn.layers[len(self.mnemodyn.layers) - num_unfrozen_layers :]:
            for parameter in layer.parameters():
                parameter.requires_grad_(True)

    def _head_output(self, input_values, attention_mask, output_hidden_states):
        if self.roi_adapter is not None:
            if input_values.ndim != 3 or input_values.shape[-1] != self.config.adapter_input_rois:
                raise ValueError(
                    f"input_values must be (batch, frames, {self.config.adapter_input_rois}) for this model's ROI "
                    f"adapter (config.adapter_input_rois), got {tuple(input_values.shape)}."
                )
            input_values = self.roi_adapter(input_values)
        out = self.mnemodyn(input_values, attention_mask=attention_mask, output_hidden_states=output_hidden_states)
        hidden = out.last_hidden_state
        if self.pooling_projection is not None:
            hidden = self.pooling_projection(hidden)
        pooled = pool_frames(hidden, attention_mask, self.config.head_pooling)
        return self.head(pooled), out.hidden_states


class MnemoDynForSequenceClassification(_MnemoDynTaskModel):
    """
    MnemoDyn with a classification (or `problem_type="regression"`) head on pooled backbone outputs; the loss
    follows transformers' `problem_type` rules (single-label cross-entropy, multi-label BCE, MSE).

    Example:

    ```python
    >>> import torch
    >>> from mnemodyn_hf import MnemoDynConfig, MnemoDynForSequenceClassification
    >>> config = MnemoDynConfig(
    ...     num_rois=10, num_layers=1, latent_channels=8, context_length=64, wavelet_levels=3, num_labels=2
    ... )
    >>> model = MnemoDynForSequenceClassification(config)
    >>> out = model(torch.randn(4, 80, 10), labels=torch.tensor([0, 1, 1, 0]))
    >>> out.logits.shape
    torch.Size([4, 2])
    ```
    """

    def __init__(self, config: MnemoDynConfig):
        super().__init__(config, config.num_labels)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple:
        """
        Args:
            input_values: (B, T, R) parcellated, normalised BOLD (R = `config.adapter_input_rois` when set).
            attention_mask: (B, T), right padding.
            labels: (B,) class indices, (B, num_labels) multi-label targets, or (B,) / (B, num_labels) values
                with `problem_type="regression"`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        logits, hidden_states = self._head_output(input_values, attention_mask, output_hidden_states)
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        if not return_dict:
            return tuple(v for v in (loss, logits, hidden_states) if v is not None)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states)


@dataclass
class MnemoDynRegressionOutput(ModelOutput):
    """
    Output of [`MnemoDynForRegression`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): mean squared error, returned with `labels`.
        predictions (`torch.FloatTensor` of shape `(batch_size, num_targets)`): predicted targets.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*): backbone input and layer outputs.
    """

    loss: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class MnemoDynForRegression(_MnemoDynTaskModel):
    """MnemoDyn with a regression head predicting `config.num_targets` values (MSE loss)."""

    def __init__(self, config: MnemoDynConfig):
        super().__init__(config, config.num_targets)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MnemoDynRegressionOutput | tuple:
        """
        Args:
            input_values: (B, T, R) parcellated, normalised BOLD (R = `config.adapter_input_rois` when set).
            attention_mask: (B, T), right padding.
            labels: (B,) or (B, num_targets) targets.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        predictions, hidden_states = self._head_output(input_values, attention_mask, output_hidden_states)
        loss = None
        if labels is not None:
            targets = labels.to(predictions.dtype).reshape(predictions.shape[0], -1)
            if targets.shape != predictions.shape:
                raise ValueError(
                    f"labels give {targets.shape[1]} target(s) per sample; the model predicts "
                    f"config.num_targets={predictions.shape[1]}."
                )
            loss = nn.functional.mse_loss(predictions, targets)
        if not return_dict:
            return tuple(v for v in (loss, predictions, hidden_states) if v is not None)
        return MnemoDynRegressionOutput(loss=loss, predictions=predictions, hidden_states=hidden_states)


__all__ = [
    "MnemoDynForRegression",
    "MnemoDynForSequenceClassification",
    "MnemoDynPredictionHead",
    "MnemoDynRegressionOutput",
    "MnemoDynRoiAdapter",
    "FISHER_CLIP",
    "masked_correlations",
    "pool_frames",
    "pooled_size",
]
