"""MnemoDyn model configuration."""

from __future__ import annotations

import math

import pywt
from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .objectives import OBJECTIVES

#: Activations the backbone accepts (names of `transformers.activations.ACT2FN`).
SUPPORTED_ACTIVATIONS = ("tanh", "gelu", "relu", "silu", "sigmoid")

#: The discrete PyWavelets wavelets with perfect reconstruction (all but the FIR-approximated "dmey").
SUPPORTED_WAVELETS = tuple(name for name in pywt.wavelist(kind="discrete") if name != "dmey")

#: Temporal poolings of the task heads.
HEAD_POOLINGS = ("mean", "mean_std", "max", "correlation")
#: The built-in objectives of `MnemoDynForPreTraining`; the config accepts every name of `objectives.OBJECTIVES`.
PRETRAINING_OBJECTIVES = tuple(OBJECTIVES)
#: Where the masked objectives hide entries (see `MnemoDynConfig.mask_layout`).
MASK_LAYOUTS = ("per_roi", "whole_frame", "forecast", "mixed")
#: What the backbone reads at hidden entries (see `MnemoDynConfig.mask_input`, `mnemodyn_hf.masked_inputs`).
MASK_INPUTS = ("token", "interpolate", "interpolate_embedding")
#: Reconstruction heads of `MnemoDynForPreTraining` (see `MnemoDynConfig.reconstruction_head`).
RECONSTRUCTION_HEADS = ("frame_mlp", "per_roi")
#: How the vector-field contraction runs (see `MnemoDynConfig.field_implementation`).
FIELD_IMPLEMENTATIONS = ("auto", "eager", "native")

#: The shortest sequence the backbone accepts: the path derivative needs two frames.
MIN_SEQUENCE_LENGTH = 2
#: TR (seconds) of the released MnemoDyn model (UK Biobank), the default of the config and the feature extractor.
DEFAULT_REPETITION_TIME = 0.735


@strict
class MnemoDynConfig(PreTrainedConfig):
    r"""
    Configuration of a [`MnemoDynModel`], the attention-free wavelet / controlled-differential-equation backbone
    for parcellated resting-state fMRI (MnemoDyn, ICLR 2026). The defaults are the authors' released 450-ROI
    model (Schaefer-400 7 networks + Tian S3, UK Biobank, 490 frames).

    Each layer maps `x` (B, T, R) to a vector field `f(x_t)` (B, T, R, C) through a bottleneck MLP, contracts it with
    `dx/dt` into a latent velocity (B, T, C), evolves it with a wavelet operator and projects back to R ROIs (residual).

    num_rois (`int`, *optional*, defaults to 450):
        Number of regions of interest (parcels) in each frame. Reference name: `D`.
    num_layers (`int`, *optional*, defaults to 4):
        Number of stacked MnemoDyn layers. Reference: `len(D_out)`.
    projection_size (`int`, *optional*, defaults to 100):
        Width of the first projection of each frame. Reference: `dim_d`.
    bottleneck_size (`int`, *optional*, defaults to 3):
        Width of the low-rank bottleneck of the vector-field MLP. Reference: `h_rank`.
    latent_channels (`int`, *optional*, defaults to 300):
        Channels of the latent velocity field evolved by the wavelet operator. Reference: `dim_k`.
    wavelet (`str`, *optional*, defaults to `"db2"`):
        PyWavelets name of the discrete wavelet of the DWT/IDWT (periodization mode). Reference: `wave`.
    wavelet_levels (`int`, *optional*, defaults to 5):
        Number of DWT levels. Reference: `n_levels`.
    num_regions (`int`, *optional*, defaults to 4):
        Number of contiguous time regions with their own kernel in each level's region convolution.
        Reference: `num_sparse_LC`.
    operator_kernel_size (`int`, *optional*, defaults to 5):
        Kernel size (taps) of the region convolutions. Reference: `nb`.
    num_coarse_layers (`int`, *optional*, defaults to 4):
        Number of dense per-channel operators applied to the coarsest wavelet band. Reference: `K_dense`.
    activation (`str`, *optional*, defaults to `"tanh"`):
        Non-linearity of the MLP, the coarse operators and the region convolutions. Reference: `nonlinearity`.
    use_residual (`bool`, *optional*, defaults to `True`):
        Whether each layer adds its output to its input (`x <- x + layer(x)`).
    layer_input_norm (`bool`, *optional*, defaults to `False`):
        Pre-norm residual branches: each layer's vector field reads its input after a LayerNorm over ROIs (the path
        derivative still follows the un-normalised input). Not in the reference (docs/representations.md, R10).
    context_components (`int`, *optional*):
        Add to every layer's update a second-order context branch over this many learned ROI components
        ([`MnemoDynContextMixer`], linear in frames). Not in the reference; R12 in docs/representations.md.
    context_length (`int`, *optional*, defaults to 490):
        Number of frames the wavelet operator is built for (the training length; reference `original_length`).
        Longer sequences are processed in overlapping windows of this length and stitched; shorter ones are
        zero-padded to it (see [`MnemoDynModel`]). Outputs at exactly this length are unaffected by windowing.
    window_overlap (`int`, *optional*):
        Frames shared by consecutive windows of a sequence longer than `context_length`, blended with linear
        cross-fades. Defaults to `context_length // 4`.
    repetition_time (`float`, *optional*, defaults to 0.735):
        Sampling interval (TR, seconds) the model expects; inputs must be resampled to it. The clean path
        derivative is expressed per second using this value.
    roi_names (`list[str]`, *optional*):
        Names of the `num_rois` parcels in the order the model expects them.
    reference_compatible (`bool`, *optional*, defaults to `False`):
        Reproduce the authors' reference code exactly (set by the checkpoint converter): a one-step-lagged
        Hermite-spline derivative for the first layer, a backward difference times `context_length` for the later
        layers, both without gradient, and odd lengths left-cropped in synthesis. When `False` (new models): the
        backward difference divided by `repetition_time`, with gradient, and right-cropping (PyWavelets').
    validate_input_values (`bool`, *optional*, defaults to `False`):
        Scan every call's values and `attention_mask` (NaN/Inf, 0/1 entries, right padding); raise a `ValueError`
        naming the first bad entry. Off by default: the checks cost host-device syncs, and the feature extractor,
        `MnemoDynDataCollator` and `embed` guarantee them; shapes, ROI count, dtype and length are always checked.
    max_chunk_elements (`int`, *optional*, defaults to 4194304):
        Memory knob: the eager velocity field is computed in chunks of frames whose vector-field expansion holds
        at most this many elements (the fused kernel of `field_implementation` never materialises it), and windows
        are processed in groups of about this size, so peak memory does not hold the full (B, T, R, C) expansion.
        The default (16 MiB of float32) was the fastest of 1, 4 and 16 Mi on a 2-core CPU (docs/benchmarks.md).
    field_implementation (`str`, *optional*, defaults to `"auto"`):
        How the vector-field contraction runs, like transformers' `attn_implementation`: `"native"` a fused C
        kernel built per machine with the system C compiler (`mnemodyn_hf.native_kernels`; tanh, float32, CPU;
        never writes the (frames, R, C) expansion, tanh to 4e-7), `"eager"` the chunked PyTorch path (any device,
        dtype, activation), `"auto"` whichever of the two a first-use timing on this machine found faster for the
        shape (inference and training apart; eager where native cannot run). Saved with the config.
    initializer_range (`float`, *optional*, defaults to 0.02):
        Standard deviation of the initial output projections (near-identity layers at initialisation).
    operator_cp_rank (`int`, *optional*):
        Hold every region-convolution kernel W[region, out, in, tap] as a rank-`operator_cp_rank` CP decomposition
        applied factor by factor (in -> rank, per-rank taps, region scaling, rank -> out); `None`: full kernels.
    head_pooling (`str`, *optional*, defaults to `"mean_std"`):
        How the task heads summarise the backbone output over real frames: `"mean"` (B, R), `"mean_std"` (B, 2R:
        ROI means then standard deviations, the `pooler_output`), `"max"` (B, R) or `"correlation"` (Fisher-z
        correlations between ROIs or `head_pooling_components` learned components: what connectivity carries).
    head_pooling_components (`int`, *optional*):
        With `head_pooling="correlation"`, project the ROIs to this many learned components first (a linear map
        trained with the head), so the head reads K(K-1)/2 features instead of R(R-1)/2; `None` uses the ROIs.
    head_hidden_size (`int`, *optional*, defaults to 256):
        Width of the task heads' hidden layer (LayerNorm -> Linear -> GELU -> Dropout -> Linear).
    head_dropout (`float`, *optional*, defaults to 0.1):
        Dropout of the task heads (inactive in eval mode).
    freeze_backbone (`bool`, *optional*, defaults to `True`):
        Whether the task models train only their head (the paper's frozen-backbone protocol).
    num_unfrozen_layers (`int`, *optional*, defaults to 0):
        With `freeze_backbone`, the number of last backbone layers that still train.
    num_targets (`int`, *optional*, defaults to 1):
        Number of regression targets of [`MnemoDynForRegression`].
    adapter_input_rois (`int`, *optional*):
        ROI count of task data parcellated with another atlas than the backbone's. The task models then learn a
        linear ROI adapter (adapter_input_rois -> num_rois) in front of the backbone; it trains even when the
        backbone is frozen. `None`: inputs have the backbone's `num_rois`.
    pretraining_objective (`str`, *optional*, defaults to `"masked"`):
        Objective of [`MnemoDynForPreTraining`], a name of `mnemodyn_hf.objectives.OBJECTIVES`: `"masked"`
        (reconstruct hidden entries), `"denoising"` (the clean signal from a noisy copy) or `"jepa"` (an EMA target
        encoder's representation of the hidden entries, with stop-gradient).
    mask_ratio (`float`, *optional*, defaults to 0.7):
        Expected fraction of each ROI's frames hidden by the `"masked"` and `"jepa"` objectives (paper: ~70 %).
    mask_span_frames (`int`, *optional*, defaults to 30):
        Length in frames of each masked span (spans may overlap and merge; the reference used 30).
    mask_layout (`str`, *optional*, defaults to `"per_roi"`):
        Where the masked objectives hide entries: `"per_roi"` (spans drawn independently in every ROI: a spatial
        predictor can fill them from the frame's other ROIs), `"whole_frame"` (the same spans hide every ROI: only
        the temporal context is left), `"forecast"` (the last `mask_span_frames` real frames, all ROIs) or
        `"mixed"` (each sample draws one of the three from its corruption seed).
    mask_input (`str`, *optional*, defaults to `"token"`):
        What the backbone reads at hidden entries: the mask token, a path interpolated from the observed values, or
        that path plus a learned mask embedding (`mnemodyn_hf.masked_inputs`).
    reconstruction_head (`str`, *optional*, defaults to `"frame_mlp"`):
        The pretraining head: `"frame_mlp"` (a residual MLP over all ROIs of a frame and the visibility mask, which
        can impute hidden ROIs from visible ones by itself) or `"per_roi"` (an affine map of each ROI's backbone
        output, mixing neither ROIs nor frames: every prediction of a hidden entry comes from the backbone).
    bypass_backbone (`bool`, *optional*, defaults to `False`):
        Ablation of [`MnemoDynForPreTraining`]: the head reads the corrupted input itself, the backbone is not run
        (trained with the same recipe, it measures what the backbone adds to the head's reconstruction).
    noise_std (`float`, *optional*, defaults to 0.5):
        Standard deviation of the `"denoising"` objective's Gaussian noise, in normalised (robust-scaled) units.
    ema_decay (`float`, *optional*, defaults to 0.996):
        Decay of the `"jepa"` target encoder's exponential moving average, applied once per optimizer step.
    consistency_weight (`float`, *optional*, defaults to 0.0):
        `"masked"` only: add this weight times the mean squared difference between the backbone's output on the
        corrupted and on the clean input (`MaskedObjective.consistency`); 0 leaves the objective unchanged.

    Example:

    ```python
    >>> from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
    >>> config = MnemoDynConfig(num_rois=94, num_layers=2, latent_channels=16, context_length=128)
    >>> model = MnemoDynModel(config)
    ```
    """

    model_type = "mnemodyn"
    attribute_map = {"hidden_size": "num_rois", "num_hidden_layers": "num_layers"}

    num_rois: int = 450
    num_layers: int = 4
    projection_size: int = 100
    bottleneck_size: int = 3
    latent_channels: int = 300
    wavelet: str = "db2"
    wavelet_levels: int = 5
    num_regions: int = 4
    operator_kernel_size: int = 5
    num_coarse_layers: int = 4
    activation: str = "tanh"
    use_residual: bool = True
    layer_input_norm: bool = False
    context_components: int | None = None
    context_length: int = 490
    window_overlap: int | None = None
    repetition_time: float = DEFAULT_REPETITION_TIME
    roi_names: list[str] | None = None
    reference_compatible: bool = False
    max_chunk_elements: int = 4_194_304
    field_implementation: str = "auto"
    validate_input_values: bool = False
    initializer_range: float = 0.02
    operator_cp_rank: int | None = None
    head_pooling: str = "mean_std"
    head_pooling_components: int | None = None
    head_hidden_size: int = 256
    head_dropout: float = 0.1
    freeze_backbone: bool = True
    num_unfrozen_layers: int = 0
    num_targets: int = 1
    adapter_input_rois: int | None = None
    pretraining_objective: str = "masked"
    mask_ratio: float = 0.7
    mask_span_frames: int = 30
    mask_layout: str = "per_roi"
    mask_input: str = "token"
    reconstruction_head: str = "frame_mlp"
    bypass_backbone: bool = False
    noise_std: float = 0.5
    ema_decay: float = 0.996
    consistency_weight: float = 0.0

    def __post_init__(self, **kwargs):
        self._check_values()
        super().__post_init__(**kwargs)

    def _check_values(self) -> None:
        positive = (
            "num_rois",
            "num_layers",
            "projection_size",
            "bottleneck_size",
            "latent_channels",
            "wavelet_levels",
            "num_regions",
            "operator_kernel_size",
            "max_chunk_elements",
            "mask_span_frames",
            "head_hidden_size",
            "num_targets",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MnemoDynConfig.{name} must be a positive integer, got {value!r}.")
        if self.head_pooling_components is not None and not 2 <= self.head_pooling_components <= self.num_rois:
            raise ValueError(
                f"MnemoDynConfig.head_pooling_components must be in [2, num_rois={self.num_rois}] or None, got "
                f"{self.head_pooling_components}."
            )
        for name in ("operator_cp_rank", "context_components", "adapter_input_rois"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"MnemoDynConfig.{name} must be a positive integer or None, got {value!r}.")
        for name, allowed in (
            ("mask_layout", MASK_LAYOUTS),
            ("mask_input", MASK_INPUTS),
            ("pretraining_objective", tuple(OBJECTIVES)),
            ("reconstruction_head", RECONSTRUCTION_HEADS),
            ("field_implementation", FIELD_IMPLEMENTATIONS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"MnemoDynConfig.{name}={getattr(self, name)!r} is not one of {allowed}.")
        if self.head_pooling not in HEAD_POOLINGS:
            raise ValueError(f"MnemoDynConfig.head_pooling={self.head_pooling!r} is not one of {HEAD_POOLINGS}.")
        if not 0 <= self.head_dropout < 1:
            raise ValueError(f"MnemoDynConfig.head_dropout must be in [0, 1), got {self.head_dropout}.")
        if not 0 <= self.num_unfrozen_layers <= self.num_layers:
            raise ValueError(
                f"MnemoDynConfig.num_unfrozen_layers={self.num_unfrozen_layers} must be in "
                f"[0, num_layers={self.num_layers}]."
            )
        if self.num_coarse_layers < 0:
            raise ValueError(f"MnemoDynConfig.num_coarse_layers must be >= 0, got {self.num_coarse_layers}.")
        if self.wavelet not in SUPPORTED_WAVELETS:
            raise ValueError(
                f"MnemoDynConfig.wavelet={self.wavelet!r} is not supported; choose a discrete "
                "PyWavelets wavelet with perfect reconstruction (pywt.wavelist(kind='discrete') except 'dmey'), "
                "e.g. 'db2', 'haar', 'sym4', 'coif1', 'bior2.2'."
            )
        if self.activation not in SUPPORTED_ACTIVATIONS:
            raise ValueError(
                f"MnemoDynConfig.activation={self.activation!r} is not supported; "
                f"choose one of {SUPPORTED_ACTIVATIONS}."
            )
        if self.context_length < 2**self.wavelet_levels:
            raise ValueError(
                f"MnemoDynConfig.context_length={self.context_length} is too short for wavelet_levels="
                f"{self.wavelet_levels}: it must be at least 2**wavelet_levels = {2**self.wavelet_levels}."
            )
        coarsest = self.band_lengths[-1]
        if coarsest < self.num_regions:
            raise ValueError(
                f"MnemoDynConfig.num_regions={self.num_regions} exceeds the coarsest band length {coarsest} "
                f"(context_length={self.context_length}, wavelet_levels={self.wavelet_levels}); "
                "use fewer regions or fewer levels."
            )
        if self.window_overlap is not None and not 0 <= self.window_overlap < self.context_length:
            raise ValueError(
                f"MnemoDynConfig.window_overlap={self.window_overlap} must be in [0, context_length="
                f"{self.context_length})."
            )
        if not self.repetition_time > 0:
            raise ValueError(f"MnemoDynConfig.repetition_time must be > 0 seconds, got {self.repetition_time}.")
        if self.roi_names is not None and len(self.roi_names) != self.num_rois:
            raise ValueError(f"MnemoDynConfig.roi_names has {len(self.roi_names)} names but num_rois={self.num_rois}.")
        if not 0 < self.mask_ratio < 1:
            raise ValueError(
                f"MnemoDynConfig.mask_ratio must be in (0, 1) (a fraction of each ROI's frames), got {self.mask_ratio}."
            )
        if not self.noise_std > 0:
            raise ValueError(f"MnemoDynConfig.noise_std must be > 0 (normalised units), got {self.noise_std}.")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"MnemoDynConfig.ema_decay must be in [0, 1), got {self.ema_decay}.")
        weight = self.consistency_weight
        if not weight >= 0 or (weight and (self.pretraining_objective != "masked" or self.bypass_backbone)):
            raise ValueError(
                f"MnemoDynConfig.consistency_weight={weight} must be >= 0 (> 0: 'masked' with a backbone)."
            )

    @property
    def band_lengths(self) -> list[int]:
        """Lengths of the approximation bands: `[context_length, ceil(T/2), ..., coarsest]` (levels + 1)."""
        lengths = [self.context_length]
        for _ in range(self.wavelet_levels):
            lengths.append(math.ceil(lengths[-1] / 2))
        return lengths

    @property
    def effective_window_overlap(self) -> int:
        """`window_overlap`, or its default `context_length // 4`."""
        return self.context_length // 4 if self.window_overlap is None else self.window_overlap

    @property
    def pooled_size(self) -> int:
        """Size of `pooler_output`: temporal mean and standard deviation of every ROI."""
        return 2 * self.num_rois


__all__ = [
    "HEAD_POOLINGS",
    "MASK_INPUTS",
    "MASK_LAYOUTS",
    "MIN_SEQUENCE_LENGTH",
    "MnemoDynConfig",
    "PRETRAINING_OBJECTIVES",
    "RECONSTRUCTION_HEADS",
    "SUPPORTED_ACTIVATIONS",
    "SUPPORTED_WAVELETS",
]
