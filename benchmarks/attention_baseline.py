"""The attention model a user would pick instead: a BrainLM-sized ViT-MAE encoder, built from transformers' own
`ViTMAELayer`s with SDPA attention (BrainLM: 12 layers, hidden 768, 12 heads; every ROI's series is cut into
20-frame patches, so a (T, 450) input is 450 x ceil(T / 20) tokens). Only used to time inference: the
weights are random and there is no masking (the encoder sees every token, as at downstream inference).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import ViTMAEConfig
from transformers.models.vit_mae.modeling_vit_mae import ViTMAELayer

PATCH_FRAMES = 20


class AttentionBaseline(nn.Module):
    def __init__(self, num_rois: int = 450, hidden_size: int = 768, num_layers: int = 12, num_heads: int = 12):
        super().__init__()
        config = ViTMAEConfig(
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=4 * hidden_size,
            attn_implementation="sdpa",
        )
        self.patch_embedding = nn.Linear(PATCH_FRAMES, hidden_size)
        self.roi_embedding = nn.Parameter(torch.zeros(num_rois, hidden_size))
        self.layers = nn.ModuleList(ViTMAELayer(config) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size)

    @staticmethod
    def num_tokens(frames: int, num_rois: int = 450) -> int:
        return num_rois * math.ceil(frames / PATCH_FRAMES)

    def forward(self, input_values: torch.Tensor, num_layers: int | None = None) -> torch.Tensor:
        """(B, T, R) -> (B, R * ceil(T / 20), hidden); `num_layers` runs only the first layers."""
        batch, frames, rois = input_values.shape
        patches = math.ceil(frames / PATCH_FRAMES)
        padded = nn.functional.pad(input_values, (0, 0, 0, patches * PATCH_FRAMES - frames))
        tokens = padded.transpose(1, 2).reshape(batch, rois, patches, PATCH_FRAMES)
        hidden = (self.patch_embedding(tokens) + self.roi_embedding[:, None]).reshape(batch, rois * patches, -1)
        for layer in self.layers[:num_layers]:
            hidden = layer(hidden)
        return self.norm(hidden)


__all__ = ["AttentionBaseline"]
