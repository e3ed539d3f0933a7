"""MnemoDyn backbone: vector field x path derivative -> multi-resolution wavelet operator, stacked with residuals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.utils import ModelOutput

from .configuration_mnemodyn import MIN_SEQUENCE_LENGTH, MnemoDynConfig
from .context_mixing import MnemoDynContextMixer
from .field_contraction import contract_vector_field
from .path_derivative import backward_difference, reference_linear_derivative, reference_spline_derivative
from .region_products import region_forward, region_input_gradient, region_weight_gradient
from .wavelets import analysis_filter_bank, dwt, idwt, synthesis_filter_bank
from .windowing import apply_in_windows


@dataclass
class MnemoDynModelOutput(ModelOutput):
    """
    Output of [`MnemoDynModel`].

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_frames, num_rois)`):
            Output of the last layer; frames marked as padding by `attention_mask` are 0.
        pooler_output (`torch.FloatTensor` of shape `(batch_size, 2 * num_rois)`):
            Fixed-size summary for downstream heads: the temporal mean of every ROI of `last_hidden_state`
            followed by its temporal standard deviation, both over real (unpadded) frames only.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned with `output_hidden_states=True`):
            The input and the output of every layer, `num_layers + 1` tensors of shape
            `(batch_size, num_frames, num_rois)`.
    """

    last_hidden_state: torch.FloatTensor | None = None
    pooler_output: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class MnemoDynVelocityField(nn.Module):
    """Latent velocity `v_t = f(x_t) . dX_t/dt` of one layer.

    `f(x_t)` is a (R, C) matrix per frame made by the bottleneck MLP R -> projection -> bottleneck -> R*C.
    The (frames, R, C) expansion is computed in chunks of frames and recomputed chunk by chunk in the backward
    pass (`field_contraction.py`), so it never exists for the whole sequence at once; for tanh on CPU the fused
    kernel of `native_kernels.py` does not write it at all (`config.field_implementation`).
    """

    def __init__(self, config: MnemoDynConfig):
        super().__init__()
        self.num_rois = config.num_rois
        self.latent_channels = config.latent_channels
        self.input_projection = nn.Linear(config.num_rois, config.projection_size)
        self.bottleneck = nn.Linear(config.projection_size, config.bottleneck_size)
        self.feature_expansion = nn.Linear(config.bottleneck_size, config.num_rois * config.latent_channels)
        # variance-preserving contraction: v sums R terms f(x)_{r,c} dX_r/dt, so f starts at ~1/sqrt(R)
        self.feature_expansion.init_std = (config.bottleneck_size * config.num_rois) ** -0.5
        self.activation = ACT2FN[config.activation]
        self.frames_per_chunk = max(1, config.max_chunk_elements // (config.num_rois * config.latent_channels))
        self.implementation = config.field_implementation

    def forward(self, frames: torch.Tensor, path_derivative: torch.Tensor) -> torch.Tensor:
        """
        Args:
            frames: (B, T, R) layer input.
            path_derivative: (B, T, R) dX/dt at every frame.

        Returns:
            (B, T, C) latent velocity.
        """
        batch, length, _ = frames.shape
        code = self.activation(self.bottleneck(self.activation(self.input_projection(frames))))
        velocity = contract_vector_field(
            code.reshape(batch * length, -1),
            path_derivative.reshape(batch * length, self.num_rois),
            self.feature_expansion.weight,
            self.feature_expansion.bias,
            self.activation,
            self.frames_per_chunk,
            self.implementation,
        )
        return velocity.view(batch, length, self.latent_channels)


class _RegionConvolution(torch.autograd.Function):
    """[`MnemoDynRegionConv`]'s forward and backward in one function. Forward: the blocks' taps are unfolded (a
    strided view) and laid out (regions, windows x positions, channels x taps) = (R, M, I) rows, one batched GEMM
    with the kernels (R, O, I) adds the biases. Backward: the three products ordered so that M (down to 4 at the
    coarsest level of one window) is the row count (skinny GEMMs run 2-3x faster that way round on CPU, and the
    weight gradient comes out in the weight's own layout), and the rows' gradient folded back onto the signal with
    one strided add per tap (autograd's unfold backward is a scatter). The three products are `region_products`'
    (native kernels where few rows per region make the GEMMs bound by moving the weight-sized matrix)."""

    @staticmethod
    def forward(ctx, signal: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        count, channels, length = signal.shape
        regions, out_channels, _, kernel_size = weight.shape
        block = math.ceil(length / regions)
        left = (kernel_size - 1) // 2
        blocks = F.pad(signal, (0, regions * block - length)).view(count, channels, regions, block)
        taps = F.pad(blocks, (left, kernel_size - 1 - left)).unfold(-1, kernel_size, 1)  # (N, C, r, b, k)
        rows = taps.permute(2, 0, 3, 1, 4).reshape(regions, count * block, channels * kernel_size)
        out = region_forward(rows, weight.view(regions, out_channels, -1), bias)
        ctx.save_for_backward(rows, weight)  # under autocast `out` may be half precision: the products follow it
        out = out.view(regions, count, block, out_channels).permute(1, 3, 0, 2)  # (N, O, r, b)
        return out.reshape(count, out_channels, regions * block)[..., :length]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        rows, weight = ctx.saved_tensors
        regions, out_channels, channels, kernel_size = weight.shape
        count, _, length = grad_out.shape
        block = math.ceil(length / regions)
        grad = F.pad(grad_out, (0, regions * block - length)).view(count, out_channels, regions, block)
        grad = grad.permute(2, 0, 3, 1).reshape(regions, count * block, out_channels)  # (R, M, O)
        grad_signal = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_rows = region_input_gradient(grad, weight.view(regions, out_channels, -1).to(grad.dtype))
            grad_taps = grad_rows.view(regions, count, block, channels, kernel_size)
            padded = grad_rows.new_zeros(regions, count, block + kernel_size - 1, channels)
            for tap in range(kernel_size):  # tap t of position j read padded position j + t
                padded[:, :, tap : tap + block] += grad_taps[..., tap]
            left = (kernel_size - 1) // 2
            grad_signal = padded[:, :, left : left + block].permute(1, 3, 0, 2).reshape(count, channels, -1)
            grad_signal = grad_signal[..., :length].to(rows.dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = region_weight_gradient(grad, rows.to(grad.dtype)).to(weight.dtype).view_as(weight)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(1).to(weight.dtype)
        return grad_signal, grad_weight, grad_bias


class MnemoDynRegionConv(nn.Module):
    """Piecewise-stationary convolution: time is cut into `num_regions` contiguous blocks, each with its own
    (C, C, kernel) kernel and bias, zero-padded inside the block ("same" length), so nothing crosses a block
    border. One batched GEMM per call over all regions (twice the speed of a grouped `conv1d` on CPU, forward and
    backward; see `_RegionConvolution`)."""

    def __init__(self, channels: int, kernel_size: int, num_regions: int):
        super().__init__()
        self.num_regions = num_regions
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(num_regions, channels, channels, kernel_size))
        self.bias = nn.Parameter(torch.empty(num_regions, channels))

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """(N, C, L) -> (N, C, L); the last block is zero-padded on the right when L % num_regions != 0."""
        return _RegionConvolution.apply(signal, self.weight, self.bias)


class MnemoDynCPRegionConv(nn.Module):
    """[`MnemoDynRegionConv`] with a CP-factored kernel `W[r, o, i, t] = sum_q A[r, q] B[o, q] C[i, q] D[t, q]`,
    applied without rebuilding W: project the input on C (channels -> rank), run each rank's taps D inside every
    region block, scale by the region factor A, project on B (rank -> channels), add the per-region bias.
    Parameters drop from regions * channels^2 * taps to rank * (regions + 2 channels + taps)."""

    def __init__(self, channels: int, kernel_size: int, num_regions: int, rank: int):
        super().__init__()
        self.num_regions = num_regions
        self.kernel_size = kernel_size
        self.region_factors = nn.Parameter(torch.empty(num_regions, rank))
        self.output_factors = nn.Parameter(torch.empty(channels, rank))
        self.input_factors = nn.Parameter(torch.empty(channels, rank))
        self.tap_factors = nn.Parameter(torch.empty(kernel_size, rank))
        self.bias = nn.Parameter(torch.empty(num_regions, channels))

    def rebuild_kernel(self) -> torch.Tensor:
        """The full kernel (regions, out, in, taps) these factors stand for."""
        return torch.einsum(
            "rq,oq,iq,tq->roit", self.region_factors, self.output_factors, self.input_factors, self.tap_factors
        )

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """(N, C, L) -> (N, C, L)."""
        count, channels, length = signal.shape
        regions, rank = self.num_regions, self.tap_factors.shape[1]
        block = math.ceil(length / regions)
        projected = torch.einsum("ncl,cq->nql", F.pad(signal, (0, regions * block - length)), self.input_factors)
        blocks = projected.view(count, rank, regions, block).transpose(1, 2).reshape(count * regions, rank, block)
        left = (self.kernel_size - 1) // 2
        blocks = F.pad(blocks, (left, self.kernel_size - 1 - left))
        filtered = F.conv1d(blocks, self.tap_factors.t().unsqueeze(1), groups=rank).view(count, regions, rank, block)
        mixed = torch.einsum("nrqb,rq,oq->norb", filtered, self.region_factors, self.output_factors)
        out = mixed + self.bias.t()[None, :, :, None]
        return out.reshape(count, channels, regions * block)[..., :length]


class MnemoDynCoarseMixer(nn.Module):
    """Dense temporal mixing of the coarsest band, one (L, L) matrix per channel: `y[c] = x[c] @ W[c] + b[c]`."""

    def __init__(self, channels: int, length: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, length, length))
        self.bias = nn.Parameter(torch.empty(channels, length))

    def forward(self, band: torch.Tensor) -> torch.Tensor:
        """(N, C, L) -> (N, C, L)."""
        return torch.einsum("nci,cij->ncj", band, self.weight) + self.bias


class MnemoDynWaveletOperator(nn.Module):
    """Multi-resolution operator on (N, C, context_length).

    Analysis: `wavelet_levels` periodized DWTs. Coarsest approximation: `num_coarse_layers` activated
    [`MnemoDynCoarseMixer`]s. Synthesis, from the coarsest level up: the level's analysis bands
    (detail, approximation) go through an activated [`MnemoDynRegionConv`] (a U-Net skip), the running
    reconstruction is added to the approximation half, and one IDWT produces the next finer level.
    A reconstruction one frame longer than its level (odd lengths) is cropped on the right, or on the left
    when `reference_compatible` (the reference's `shape_correction`).
    """

    def __init__(self, config: MnemoDynConfig):
        super().__init__()
        self.latent_channels = config.latent_channels
        self.band_lengths = config.band_lengths
        self.crop_left = config.reference_compatible
        self.activation = ACT2FN[config.activation]
        self.coarse_layers = nn.ModuleList(
            MnemoDynCoarseMixer(config.latent_channels, self.band_lengths[-1]) for _ in range(config.num_coarse_layers)
        )
        self.region_convs = nn.ModuleList(
            MnemoDynRegionConv(2 * config.latent_channels, config.operator_kernel_size, config.num_regions)
            if config.operator_cp_rank is None
            else MnemoDynCPRegionConv(
                2 * config.latent_channels, config.operator_kernel_size, config.num_regions, config.operator_cp_rank
            )
            for _ in range(config.wavelet_levels)
        )
        self.wavelet = config.wavelet
        self.register_buffer("analysis_filters", analysis_filter_bank(config.wavelet), persistent=False)
        self.register_buffer("synthesis_filters", synthesis_filter_bank(config.wavelet), persistent=False)

    def _fit(self, reconstruction: torch.Tensor, length: int) -> torch.Tensor:
        excess = reconstruction.shape[-1] - length
        if excess == 0:
            return reconstruction
        return reconstruction[..., excess:] if self.crop_left else reconstruction[..., :length]

    def forward(self, velocity: torch.Tensor) -> torch.Tensor:
        """(N, C, context_length) -> (N, C, context_length)."""
        approximations, details = [], []
        approximation = velocity
        for _ in self.region_convs:
            approximation, detail = dwt(approximation, self.analysis_filters)
            approximations.append(approximation)
            details.append(detail)
        reconstruction = approximation
        for layer in self.coarse_layers:
            reconstruction = self.activation(layer(reconstruction))
        channels = self.latent_channels
        for level in reversed(range(len(self.region_convs))):
            skip = self.activation(self.region_convs[level](torch.cat([details[level], approximations[level]], 1)))
            reconstruction = self._fit(reconstruction, approximations[level].shape[-1])
            reconstruction = idwt(skip[:, channels:] + reconstruction, skip[:, :channels], self.synthesis_filters)
        return self._fit(reconstruction, self.band_lengths[0])


class MnemoDynLayer(nn.Module):
    """One MnemoDyn layer: (B, T, R) -> (B, T, R) update (the residual is added by [`MnemoDynModel`])."""

    def __init__(self, config: MnemoDynConfig):
        super().__init__()
        self.input_norm = nn.LayerNorm(config.num_rois) if config.layer_input_norm else None
        self.velocity_field = MnemoDynVelocityField(config)
        self.operator = MnemoDynWaveletOperator(config)
        self.output_projection = nn.Linear(config.latent_channels, config.num_rois)
        self.output_projection.init_std = config.initializer_range  # each layer starts near the identity
        self.context_mixer = MnemoDynContextMixer(config) if config.context_components else None
        self.context_length = config.context_length
        self.window_overlap = config.effective_window_overlap
        self.windows_per_chunk = max(
            1, config.max_chunk_elements // (2 * config.latent_channels * config.context_length)
        )

    def forward(
        self, hidden: torch.Tensor, path_derivative: torch.Tensor, frame_mask: torch.Tensor | None, lengths: list[int]
    ) -> torch.Tensor:
        """
        Args:
            hidden: (B, T, R) layer input.
            path_derivative: (B, T, R).
            frame_mask: (B, T) 1 for real frames, 0 for padding, or None without padding.
            lengths: real frames per sample.

        Returns:
            (B, T, R).
        """
        frames = hidden if self.input_norm is None else self.input_norm(hidden)
        velocity = self.velocity_field(frames, path_derivative)
        if frame_mask is not None:
            velocity = velocity * frame_mask[..., None]
        evolved = apply_in_windows(
            self.operator,
            velocity.transpose(1, 2),
            lengths,
            self.context_length,
            self.window_overlap,
            self.windows_per_chunk,
        )
        update = self.output_projection(evolved.transpose(1, 2))
        if self.context_mixer is not None:
            update = update + self.context_mixer(frames, frame_mask)
        return update


class MnemoDynPreTrainedModel(PreTrainedModel):
    """Weight initialisation, loading and saving for MnemoDyn models."""

    config: MnemoDynConfig
    config_class = MnemoDynConfig
    base_model_prefix = "mnemodyn"
    main_input_name = "input_values"
    input_modalities = ("time",)
    supports_gradient_checkpointing = False
    _no_split_modules = ["MnemoDynLayer"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """LeCun-normal MLP and operator weights (tanh stays unsaturated), a vector field scaled so the latent
        velocity keeps the derivative's variance, zero biases, a small output projection (each layer starts
        near the identity map), and the wavelet filter buffers."""
        # transformers visits leaves first and skips modules without parameters of their own, so every
        # Linear is initialised here; layers that need another scale set `init_std` on their Linear.
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=getattr(module, "init_std", module.in_features**-0.5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, MnemoDynRegionConv):
            fan_in = module.weight.shape[2] * module.weight.shape[3]
            init.normal_(module.weight, std=fan_in**-0.5)
            init.zeros_(module.bias)
        elif isinstance(module, MnemoDynCPRegionConv):
            # Var(W) = rank * Var(A) Var(B) Var(C) Var(D) = 1 / (in * taps), as for the full kernel
            rank, channels = module.tap_factors.shape[1], module.input_factors.shape[0]
            init.ones_(module.region_factors)
            init.normal_(module.output_factors, std=rank**-0.5)
            init.normal_(module.input_factors, std=channels**-0.5)
            init.normal_(module.tap_factors, std=module.kernel_size**-0.5)
            init.zeros_(module.bias)
        elif isinstance(module, MnemoDynCoarseMixer):
            init.normal_(module.weight, std=module.weight.shape[1] ** -0.5)
            init.zeros_(module.bias)
        elif isinstance(module, MnemoDynWaveletOperator):
            init.copy_(module.analysis_filters, analysis_filter_bank(module.wavelet))
            init.copy_(module.synthesis_filters, synthesis_filter_bank(module.wavelet))


class MnemoDynModel(MnemoDynPreTrainedModel):
    """
    The MnemoDyn backbone. Input: parcellated, normalised BOLD `input_values` (B, T, R) sampled at
    `config.repetition_time`. The model computes the path derivative itself.

    Any length T >= 2 is accepted: the wavelet operator runs on windows of `config.context_length` frames
    (see `mnemodyn_hf.windowing`), so time and memory grow linearly in T and T = `context_length` is computed
    exactly as trained. Padded batches pass `attention_mask` (B, T) with right padding; every sample is
    processed from its own real frames, so padding never changes the outputs of real frames.

    Example:

    ```python
    >>> import torch
    >>> from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
    >>> config = MnemoDynConfig(num_rois=10, num_layers=2, latent_channels=8, context_length=64, wavelet_levels=3)
    >>> model = MnemoDynModel(config)
    >>> out = model(torch.randn(2, 100, 10))
    >>> out.last_hidden_state.shape, out.pooler_output.shape
    (torch.Size([2, 100, 10]), torch.Size([2, 20]))
    ```
    """

    #: A backbone loaded from a pretraining or task folder leaves that folder's reconstruction head, JEPA target
    #: encoder, ROI adapter and task head behind: expected, so not reported as unexpected weights.
    _keys_to_ignore_on_load_unexpected = [r"^head\.", r"^target_encoder\.", r"^roi_adapter\.", r"^pooling_projection\."]

    def __init__(self, config: MnemoDynConfig):
        super().__init__(config)
        self.layers = nn.ModuleList(MnemoDynLayer(config) for _ in range(config.num_layers))
        self.post_init()

    def path_derivative(self, hidden: torch.Tensor, layer_index: int) -> torch.Tensor:
        """dX/dt (B, T, R) fed to layer `layer_index`, in the configured semantics (see `path_derivative`)."""
        if not self.config.reference_compatible:
            return backward_difference(hidden, 1.0 / self.config.repetition_time)
        with torch.no_grad():
            if layer_index == 0:
                return reference_spline_derivative(hidden, self.config.context_length)
            return reference_linear_derivative(hidden, self.config.context_length)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MnemoDynModelOutput | tuple:
        """
        Args:
            input_values: (B, T, R) parcellated BOLD, R = `config.num_rois`, T >= 2.
            attention_mask: (B, T), 1 for real frames and 0 for right padding.
            output_hidden_states: also return the input and every layer's output.
            return_dict: return a [`MnemoDynModelOutput`] (default) instead of a tuple.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        hidden, frame_mask, lengths = self._validated_inputs(input_values, attention_mask)
        all_hidden = (hidden,) if output_hidden_states else None
        for index, layer in enumerate(self.layers):
            update = layer(hidden, self.path_derivative(hidden, index), frame_mask, lengths)
            hidden = hidden + update if self.config.use_residual else update
            if frame_mask is not None:
                hidden = hidden * frame_mask[..., None]
            if output_hidden_states:
                all_hidden = all_hidden + (hidden,)
        pooled = masked_mean_and_std(hidden, frame_mask)
        if not return_dict:
            return tuple(value for value in (hidden, pooled, all_hidden) if value is not None)
        return MnemoDynModelOutput(last_hidden_state=hidden, pooler_output=pooled, hidden_states=all_hidden)

    def _validated_inputs(self, input_values, attention_mask) -> tuple[torch.Tensor, torch.Tensor | None, list[int]]:
        """Check shapes (and values, with `config.validate_input_values`); return frames in the model's dtype, the
        float mask (or None) and the lengths."""
        rois = self.config.num_rois
        values = torch.as_tensor(input_values)
        if values.ndim != 3:
            hint = {
                1: "a single ROI time course; give (batch, frames, rois)",
                2: "add a batch axis, e.g. input_values[None] for one (frames, rois) series",
                4: "a 4-D array looks like an fMRI volume: parcellate it first with MnemoDynFeatureExtractor",
            }.get(values.ndim, "expected (batch, frames, rois)")
            raise ValueError(
                f"input_values must be 3-D (batch, frames, rois={rois}); got {values.ndim}-D of shape "
                f"{tuple(values.shape)}: {hint}."
            )
        if values.shape[-1] != rois:
            hint = (
                " The axes look swapped: transpose to (batch, frames, rois)."
                if values.shape[1] == rois
                else f" Parcellate with the model's atlas ({rois} ROIs) or use a model configured for "
                f"num_rois={values.shape[-1]}."
            )
            raise ValueError(
                f"input_values has {values.shape[-1]} ROIs on its last axis, the model expects {rois}.{hint}"
            )
        if values.is_complex() or values.dtype == torch.bool:
            raise ValueError(f"input_values must be real numbers, got dtype {values.dtype}.")
        frames = values.shape[1]
        if frames < MIN_SEQUENCE_LENGTH:
            raise ValueError(
                f"input_values has {frames} frame(s); MnemoDyn needs at least {MIN_SEQUENCE_LENGTH} frames "
                "(the path derivative is a difference of consecutive frames)."
            )
        parameter = next(self.parameters())
        values = values.to(device=parameter.device, dtype=parameter.dtype)
        if self.config.validate_input_values:
            _check_values(values, attention_mask)
        if attention_mask is None:
            return values, None, [frames] * values.shape[0]
        mask = torch.as_tensor(attention_mask, device=values.device)
        if tuple(mask.shape) != tuple(values.shape[:2]):
            raise ValueError(
                f"attention_mask must have shape (batch, frames) = {tuple(values.shape[:2])}, got {tuple(mask.shape)}."
            )
        lengths = [int(n) for n in mask.sum(dim=1).tolist()]
        if max(lengths) > frames:  # free once the lengths are on the host: catches masks that are not 0/1
            raise ValueError("attention_mask must contain only 0 (padding) and 1 (real frame).")
        if min(lengths) < MIN_SEQUENCE_LENGTH:
            raise ValueError(
                f"every sequence needs at least {MIN_SEQUENCE_LENGTH} real frames; attention_mask gives lengths "
                f"{lengths}."
            )
        if min(lengths) == frames:
            return values, None, lengths
        return values, mask.to(values.dtype), lengths


def _check_values(values: torch.Tensor, attention_mask) -> None:
    """The full value checks of `config.validate_input_values` (each a host-device sync)."""
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        sample, frame, roi = (int(i) for i in (~finite).nonzero()[0])
        raise ValueError(
            f"input_values contains {int((~finite).sum())} NaN/Inf value(s), the first at sample {sample}, "
            f"frame {frame}, ROI {roi}. Interpolate or drop bad frames, or fill empty parcels, before the model."
        )
    if attention_mask is None:
        return
    mask = torch.as_tensor(attention_mask, device=values.device)
    if mask.shape != values.shape[:2]:
        return  # reported by the shape check
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("attention_mask must contain only 0 (padding) and 1 (real frame).")
    if bool((mask[:, 1:] > mask[:, :-1]).any()):
        raise ValueError(
            "attention_mask must mark real frames first and padding last (right padding); "
            "left padding or gaps inside a sequence are not supported."
        )


def masked_mean_and_std(hidden: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
    """Temporal mean and standard deviation over real frames, concatenated: (B, T, R) -> (B, 2R)."""
    if frame_mask is None:
        frame_mask = hidden.new_ones(hidden.shape[:2])
    weights = frame_mask[..., None]
    count = weights.sum(dim=1)
    mean = (hidden * weights).sum(dim=1) / count
    variance = (((hidden - mean[:, None]) ** 2) * weights).sum(dim=1) / count
    return torch.cat([mean, torch.sqrt(variance + 1e-12)], dim=-1)  # the epsilon keeps the gradient finite


__all__ = ["MnemoDynModel", "MnemoDynModelOutput", "MnemoDynPreTrainedModel", "masked_mean_and_std"]
