"""Convert the authors' Lightning checkpoint (MnemoDyn draft code, `LitORionModelOptimized`) to a
Hub-ready folder (config.json + model.safetensors + modeling code + feature extractor + model card) that
`AutoModel.from_pretrained` loads.

The checkpoint is read with `torch.load(..., weights_only=True)`: only tensors and plain Python values are
accepted, so a file holding arbitrary pickled objects is refused, never executed. The converted config sets
`reference_compatible=True`, which reproduces the reference's derivative semantics, left-crop and stacking.

Usage::

    mnemodyn convert Orion_450_ukbiobank/model.ckpt mnemodyn-ukb --card model_cards/mnemodyn-ukb/model_card.json
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

from ..configuration_mnemodyn import MnemoDynConfig
from ..modeling_mnemodyn import MnemoDynModel
from ..wavelets import analysis_filter_bank, synthesis_filter_bank
from .model_card import ModelCardFacts

#: What every card of a converted checkpoint says (reference_implementation notes: §2.5 objective, licence).
CONVERTED_LIMITATIONS = (
    "Identity-like pretraining: the released checkpoint was most likely trained by plain reconstruction with "
    "residual connections (its reported validation MAE is 2e-4), so its outputs stay close to its inputs and its "
    "'foundation features' are close to the raw series. Compare it with the FC baseline before relying on it.",
    "No normalisation statistics ship with the authors' weights: fit `MnemoDynFeatureExtractor` on your training "
    "subjects; inputs must be at TR 0.735 s with the 450-ROI atlas in the reference's ROI order.",
    "Licences conflict in the authors' release (CC BY-NC 4.0 in the README and card, MIT in the LICENSE file).",
)
_LAYER_KEY = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_MODULE_MAP = [
    (re.compile(r"^(input_projection|bottleneck|feature_expansion)\.(weight|bias)$"), r"velocity_field.\1.\2"),
    (re.compile(r"^dense_layers\.(\d+)\.(weight|bias)$"), r"operator.coarse_layers.\1.\2"),
    (re.compile(r"^conv_layers\.(\d+)\.0\.(weight|bias)$"), r"operator.region_convs.\1.\2"),
    (re.compile(r"^output_projection\.(weight|bias)$"), r"output_projection.\1"),
]
_FILTER_KEYS = {
    "wavelet_processor.forward_wavelet.h0": ("analysis", 0),
    "wavelet_processor.forward_wavelet.h1": ("analysis", 1),
    "wavelet_processor.inverse_wavelet.g0": ("synthesis", 0),
    "wavelet_processor.inverse_wavelet.g1": ("synthesis", 1),
}


class ReferenceCheckpointError(ValueError):
    """The file is not a usable checkpoint of the authors' MnemoDyn reference code."""


def load_reference_checkpoint(path: str | os.PathLike) -> dict:
    """Read a reference `.ckpt` safely (tensors and plain values only) and check its layout."""
    path = Path(path)
    if not path.is_file():
        raise ReferenceCheckpointError(f"{path}: no such checkpoint file.")
    if path.stat().st_size == 0:
        raise ReferenceCheckpointError(f"{path}: the file is empty.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ReferenceCheckpointError(
            f"{path}: refused to load. It holds Python objects other than tensors and plain values, and is read "
            f"with torch.load(weights_only=True) so nothing in it is executed ({error}). Re-save the "
            "checkpoint with only `state_dict` and `hyper_parameters`."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise ReferenceCheckpointError(
            f"{path}: not a readable PyTorch checkpoint (corrupt or truncated?): {error}"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        found = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ReferenceCheckpointError(
            f"{path}: expected a Lightning checkpoint of the MnemoDyn reference with 'state_dict' and "
            f"'hyper_parameters', found {found}."
        )
    if not any(_LAYER_KEY.match(key) for key in checkpoint["state_dict"]):
        raise ReferenceCheckpointError(
            f"{path}: the state_dict has no 'model.layers.<i>.' entries; it is not a MnemoDyn reference checkpoint."
        )
    return checkpoint


def reference_config(hparams: dict, **overrides) -> MnemoDynConfig:
    """Map the reference hyper-parameters to a reference-compatible [`MnemoDynConfig`].

    Arguments the reference stores but never uses (`K_LC`, `dense_rank`, `LC_rank`, `conv_bias`,
    `masked_modelling`) and training-only ones (`lr`, `loss_type`, `use_mRLoss`, ...) are ignored.
    """
    required = (
        "D",
        "D_out",
        "dim_d",
        "dim_k",
        "h_rank",
        "original_length",
        "n_levels",
        "nb",
        "num_sparse_LC",
        "K_dense",
        "wave",
        "nonlinearity",
    )
    missing = [name for name in required if name not in hparams]
    if missing:
        raise ReferenceCheckpointError(f"hyper_parameters lack {missing}; not a MnemoDyn reference checkpoint.")
    unsupported = {
        "scale": "per-channel output scales",
        "predict": "the built-in prediction head",
        "use_mixed_precision": "fp16 autocast inside the layer",
    }
    for name, what in unsupported.items():
        if hparams.get(name):
            raise ReferenceCheckpointError(
                f"hyper_parameters sets {name}=True ({what}); the converter does not support it."
            )
    if hparams.get("linear_bias", True) is not True:
        raise ReferenceCheckpointError("hyper_parameters sets linear_bias=False; the converter needs biased linears.")
    if hparams.get("interpol", "spline") != "spline":
        raise ReferenceCheckpointError(
            f"hyper_parameters sets interpol={hparams['interpol']!r}; only the released 'spline' first layer is "
            "supported."
        )
    if float(hparams.get("duration", 1.0)) != 1.0:
        raise ReferenceCheckpointError(
            "hyper_parameters sets duration != 1; the reference time grid is assumed to be [0, 1)."
        )
    outputs = list(hparams["D_out"])
    if any(width != hparams["D"] for width in outputs):
        raise ReferenceCheckpointError(
            f"layer widths D_out={outputs} differ from D={hparams['D']}; only same-width stacks are supported."
        )
    if hparams["original_length"] % 2:
        raise ReferenceCheckpointError(
            f"original_length={hparams['original_length']} is odd; the reference then returns T+1 frames and drops "
            "its residuals, which this package does not reproduce."
        )
    values = dict(
        num_rois=int(hparams["D"]),
        num_layers=len(outputs),
        projection_size=int(hparams["dim_d"]),
        bottleneck_size=int(hparams["h_rank"]),
        latent_channels=int(hparams["dim_k"]),
        wavelet=str(hparams["wave"]),
        wavelet_levels=int(hparams["n_levels"]),
        num_regions=int(hparams["num_sparse_LC"]),
        operator_kernel_size=int(hparams["nb"]),
        num_coarse_layers=int(hparams["K_dense"]),
        activation=str(hparams["nonlinearity"]),
        use_residual=bool(hparams.get("use_residual", False)),
        context_length=int(hparams["original_length"]),
        reference_compatible=True,
    )
    values.update(overrides)
    return MnemoDynConfig(**values)


def reference_state_dict(state_dict: dict[str, torch.Tensor], config: MnemoDynConfig) -> dict[str, torch.Tensor]:
    """Rename reference weights to [`MnemoDynModel`] names; check the wavelet filter buffers against PyWavelets."""
    filters = {
        "analysis": analysis_filter_bank(config.wavelet)[:, 0],
        "synthesis": synthesis_filter_bank(config.wavelet)[0],
    }
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        match = _LAYER_KEY.match(key)
        if match is None:
            unknown.append(key)
            continue
        layer, name = match.groups()
        if name in _FILTER_KEYS:
            bank, row = _FILTER_KEYS[name]
            expected = filters[bank][row]
            if bank == "synthesis":  # stored unflipped by the reference
                expected = expected.flip(-1)
            if tensor.numel() != expected.numel() or not torch.allclose(tensor.flatten().float(), expected, atol=1e-6):
                raise ReferenceCheckpointError(
                    f"{key} does not hold the PyWavelets {config.wavelet!r} filter; the checkpoint is inconsistent."
                )
            continue
        for pattern, replacement in _MODULE_MAP:
            if pattern.match(name):
                converted[f"layers.{layer}.{pattern.sub(replacement, name)}"] = tensor.float().contiguous()
                break
        else:
            unknown.append(key)
    if unknown:
        raise ReferenceCheckpointError(f"unexpected entries in the reference state_dict: {unknown[:6]}")
    return converted


def convert_reference_checkpoint(
    checkpoint_path: str | os.PathLike, output_dir: str | os.PathLike | None = None, **config_overrides
) -> MnemoDynModel:
    """Convert a reference checkpoint; save it with `save_pretrained` to `output_dir` when given.

    Args:
        checkpoint_path: the authors' `.ckpt` (Lightning) file.
        output_dir: folder to write `config.json` and `model.safetensors` to.
        config_overrides: extra [`MnemoDynConfig`] fields, e.g. `roi_names` or `repetition_time`.

    Returns:
        The converted model in eval mode.
    """
    checkpoint = load_reference_checkpoint(checkpoint_path)
    config = reference_config(checkpoint["hyper_parameters"], **config_overrides)
    weights = reference_state_dict(checkpoint["state_dict"], config)
    model = MnemoDynModel(config)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ReferenceCheckpointError(
            f"{checkpoint_path}: weights do not match the configuration (missing {missing[:6]}, unexpected "
            f"{unexpected[:6]}); the hyper_parameters and state_dict disagree."
        )
    model.eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
    return model


def converted_card_facts(checkpoint_path: str | os.PathLike, output_dir: str | os.PathLike) -> ModelCardFacts:
    """Default card facts of a converted checkpoint (`--card FILE` replaces them, e.g. model_cards/mnemodyn-ukb)."""
    return ModelCardFacts(
        model_name=Path(output_dir).resolve().name,
        summary=(
            f"The MnemoDyn authors' checkpoint `{Path(checkpoint_path).name}`, converted with `mnemodyn convert` "
            "(weights unchanged, safetensors; `reference_compatible=True` reproduces the reference outputs)."
        ),
        training_data="As released by the MnemoDyn authors; the checkpoint does not record its training data.",
        license="cc-by-nc-4.0",
        limitations=list(CONVERTED_LIMITATIONS),
        tags=["converted"],
    )
