"""A literal port of the authors' reference backbone, kept only as the benchmark baseline.

It follows the reference code's structure step by step (reference_implementation.md §1.2-§1.6): the whole
(B, T, D, dim_k) vector-field expansion is materialised and contracted with `einsum`; the region convolution
is `torch.func.vmap` over per-region `conv1d(padding="same")`; the DWT is a Python loop of single-level
transforms (the pytorch_wavelets construction: roll, conv with `groups`, wrap-add), each level wrapped in
`torch.utils.checkpoint` during training as in the reference; derivatives are those of the reference (spline
for the first layer, linear x T for the others, under `no_grad`). It holds its weights in the same layout as
`MnemoDynModel`, so the two can be compared output for output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
from mnemodyn_hf.path_derivative import reference_linear_derivative, reference_spline_derivative
from mnemodyn_hf.wavelets import analysis_filter_bank, synthesis_filter_bank


class LiteralWaveletLevel(nn.Module):
    """pytorch_wavelets-style single level (mode 'periodization'), filters of shape (1, 1, L)."""

    def __init__(self, wavelet: str):
        super().__init__()
        analysis, synthesis = analysis_filter_bank(wavelet), synthesis_filter_bank(wavelet)
        self.register_buffer("h0", analysis[0:1])
        self.register_buffer("h1", analysis[1:2])
        self.register_buffer("g0", synthesis[:, 0:1].flip(-1))
        self.register_buffer("g1", synthesis[:, 1:2].flip(-1))

    def forward_level(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        channels = x.shape[1]
        if x.shape[-1] % 2:
            x = torch.cat([x, x[..., -1:]], dim=-1)
        length, taps = x.shape[-1], self.h0.shape[-1]
        half, shift = length // 2, taps // 2
        x = torch.roll(x, -shift, dims=-1)
        weights = torch.cat([self.h0, self.h1]).repeat(channels, 1, 1)  # (2C, 1, L)
        bands = F.conv1d(x, weights, stride=2, padding=taps - 1, groups=channels)
        bands = torch.cat([bands[..., :shift] + bands[..., half : half + shift], bands[..., shift:half]], dim=-1)
        return bands[:, 0::2], bands[:, 1::2]

    def inverse_level(self, approximation: torch.Tensor, detail: torch.Tensor) -> torch.Tensor:
        channels, half = approximation.shape[1], approximation.shape[-1]
        taps = self.g0.shape[-1]
        low = F.conv_transpose1d(approximation, self.g0.repeat(channels, 1, 1), stride=2, groups=channels)
        high = F.conv_transpose1d(detail, self.g1.repeat(channels, 1, 1), stride=2, groups=channels)
        full = low + high  # length 2n + L - 2
        length = 2 * half
        out = full[..., :length].clone()
        tail = full[..., length:]
        for start in range(0, tail.shape[-1], length):
            piece = tail[..., start : start + length]
            out[..., : piece.shape[-1]] += piece
        return torch.roll(out, 1 - taps // 2, dims=-1)


class LiteralRegionConv(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, input_length: int):
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight.clone()), nn.Parameter(bias.clone())
        regions = weight.shape[0]
        self.pad = (regions - input_length % regions) % regions
        self.block = (input_length + self.pad) // regions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        regions = self.weight.shape[0]
        blocks = F.pad(x, (0, self.pad)).reshape(batch, channels, regions, self.block).permute(2, 0, 1, 3)
        # weights cast to the input's dtype: autocast does not reach inside vmap (bf16 runs fail otherwise)
        conv = lambda xb, w, b: F.conv1d(xb, w.to(xb.dtype), b.to(xb.dtype), padding="same")  # noqa: E731
        out = torch.func.vmap(conv)(blocks, self.weight, self.bias)
        return out.permute(1, 2, 0, 3).reshape(batch, channels, regions * self.block)[..., :length]


class LiteralLayer(nn.Module):
    def __init__(self, layer, config: MnemoDynConfig):
        super().__init__()
        field = layer.velocity_field
        self.input_projection, self.bottleneck = field.input_projection, field.bottleneck
        self.feature_expansion, self.output_projection = field.feature_expansion, layer.output_projection
        self.dense_weights = nn.ParameterList(
            nn.Parameter(m.weight.detach().clone()) for m in layer.operator.coarse_layers
        )
        self.dense_biases = nn.ParameterList(
            nn.Parameter(m.bias.detach().clone()) for m in layer.operator.coarse_layers
        )
        lengths = config.band_lengths
        self.conv_layers = nn.ModuleList(
            LiteralRegionConv(conv.weight.detach(), conv.bias.detach(), lengths[level + 1])
            for level, conv in enumerate(layer.operator.region_convs)
        )
        self.wavelet = LiteralWaveletLevel(config.wavelet)
        self.levels, self.channels, self.rois = config.wavelet_levels, config.latent_channels, config.num_rois
        self.output_sizes = lengths[1:]

    def forward(self, x: torch.Tensor, derivative: torch.Tensor) -> torch.Tensor:
        batch, length, rois = x.shape
        h = torch.tanh(self.input_projection(x))
        h = torch.tanh(self.bottleneck(h))
        h = torch.tanh(self.feature_expansion(h)).view(batch, length, rois, self.channels)
        velocity = torch.einsum("btdk,btd->btk", h, derivative).transpose(1, 2)
        approximations, details, current = [], [], velocity
        for _ in range(self.levels):
            if self.training:
                current, detail = checkpoint(self.wavelet.forward_level, current, use_reentrant=False)
            else:
                current, detail = self.wavelet.forward_level(current)
            approximations.append(current)
            details.append(detail)
        reconstruction = current
        for weight, bias in zip(self.dense_weights, self.dense_biases):
            reconstruction = torch.tanh(torch.einsum("bki,kij->bkj", reconstruction, weight) + bias)
        for level in reversed(range(self.levels)):
            skip = torch.tanh(self.conv_layers[level](torch.cat([details[level], approximations[level]], 1)))
            target = self.output_sizes[level]
            if reconstruction.shape[-1] != target:
                reconstruction = nn.ConstantPad1d((target - reconstruction.shape[-1], 0), 0.0)(reconstruction)
            combined = skip + torch.cat([torch.zeros_like(reconstruction), reconstruction], 1)
            reconstruction = self.wavelet.inverse_level(combined[:, self.channels :], combined[:, : self.channels])
        return self.output_projection(reconstruction.transpose(1, 2))


class LiteralReferenceBackbone(nn.Module):
    """The reference stack (tanh, residual, reference derivatives) holding a `MnemoDynModel`'s weights."""

    def __init__(self, model: MnemoDynModel):
        super().__init__()
        config = model.config
        if config.activation != "tanh" or config.context_length % 2:
            raise ValueError("the literal port covers the released setting: tanh and an even context length")
        self.context_length = config.context_length
        self.layers = nn.ModuleList(LiteralLayer(layer, config) for layer in model.layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            with torch.no_grad():
                derivative = (reference_spline_derivative if index == 0 else reference_linear_derivative)(
                    x, self.context_length
                )
            x = x + layer(x, derivative)
        return x


def literal_port_of(model: MnemoDynModel) -> LiteralReferenceBackbone:
    """A literal reference port with `model`'s weights (copied; the two do not share parameters)."""
    import copy

    parameter = next(model.parameters())
    return LiteralReferenceBackbone(copy.deepcopy(model)).to(device=parameter.device, dtype=parameter.dtype)


__all__ = ["LiteralReferenceBackbone", "literal_port_of"]
