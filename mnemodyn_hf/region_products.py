"""The region convolution's three products: torch's batched GEMMs, or the native kernels of
`kernels/region_products.c` when a region has few rows.

    forward            out[r] = rows[r] @ weight[r]^T + bias[r]     (regions, rows, out_features)
    input gradient     out[r] = grad[r] @ weight[r]                 (regions, rows, in_features)
    weight gradient    out[r] = grad[r]^T @ rows[r]                 (regions, out_features, in_features)

With one sequence the wavelet levels give each region 4-62 positions. At the coarse levels each product reads
(forward, input gradient) or writes (weight gradient) a matrix as large as the weight (600 x 3000 per region at the
released size) for a few multiply-adds per element, and a GEMM library moves it at a fraction of the memory
bandwidth; at the finer ones a library's copy of that matrix into its blocked layout costs a good part of the
product, and the kernels read it in place. Which of the
two runs is timed on the first product of each kind and shape on this machine (interleaved, on the real inputs) and
kept beside the kernel library (`native_kernels.store_choice`), as the field contraction's choice is; on a tie the
kernel is kept. Each contender writes every timed result into the output its warm-up call allocated, so no timed
call pays for faulting in fresh pages (which come and go with the allocator's state early in a process). Without the
kernels (`native_kernels.kernel_status()`), off the CPU, in another dtype, or above a kernel's row limit, torch runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .native_kernels import kernel_status, store_choice, stored_choice

#: Rows per region the kernels serve (the positions per region of one sequence's finest wavelet level at the released
#: size are 62); above it the products are large enough for the GEMM library's blocking to pay.
MAX_KERNEL_ROWS = 64
_TUNING_REPEATS = 3
_choices: dict[str, dict] = {}  # this process's choices, by `_tuning_key`


@dataclass(frozen=True)
class _Product:
    """One product: its kernel's entry point and the torch fallback (same arguments)."""

    entry: str
    torch: Callable[..., torch.Tensor]  # the product's tensors, then `out` (None: a new tensor)


def _torch_forward(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, out=None) -> torch.Tensor:
    return torch.baddbmm(bias[:, None, :], rows, weight.transpose(1, 2), out=out)


def _torch_input_gradient(grad: torch.Tensor, weight: torch.Tensor, out=None) -> torch.Tensor:
    return torch.bmm(grad, weight, out=out)


def _torch_weight_gradient(grad: torch.Tensor, rows: torch.Tensor, out=None) -> torch.Tensor:
    return torch.bmm(grad.transpose(1, 2), rows, out=out)


PRODUCTS = {
    "forward": _Product("mnemodyn_region_forward", _torch_forward),
    "input_gradient": _Product("mnemodyn_region_input_gradient", _torch_input_gradient),
    "weight_gradient": _Product("mnemodyn_region_weight_gradient", _torch_weight_gradient),
}


def _dimensions(kind: str, first: torch.Tensor, second: torch.Tensor) -> tuple[int, int, int, int]:
    """(regions, rows, out_features, in_features) of a product's first two arguments."""
    regions, count = first.shape[:2]
    if kind == "weight_gradient":  # grad (R, M, O), rows (R, M, I)
        return regions, count, first.shape[2], second.shape[2]
    return regions, count, second.shape[1], second.shape[2]  # rows or grad (R, M, .), weight (R, O, I)


def _kernel(kind: str, *tensors: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """The native kernel of `kind` on float32 CPU tensors (checked by `_kernel_applies`), made contiguous (views of
    the convolution's buffers are small; the weight already is), into `out` (contiguous, of the result's shape) or a
    new tensor."""
    tensors = tuple(t.contiguous() for t in tensors)
    regions, count, out_features, in_features = _dimensions(kind, *tensors[:2])
    shapes = {
        "forward": (regions, count, out_features),
        "input_gradient": (regions, count, in_features),
        "weight_gradient": (regions, out_features, in_features),
    }
    if out is None:
        out = tensors[0].new_empty(shapes[kind])
    entry = getattr(kernel_status().library, PRODUCTS[kind].entry)
    pointers = [t.data_ptr() for t in tensors]
    if entry(*pointers, out.data_ptr(), regions, count, out_features, in_features, torch.get_num_threads()):
        raise ValueError(
            f"the region {kind.replace('_', ' ')} kernel takes at most {MAX_KERNEL_ROWS} rows per region (got {count})"
        )
    return out


def _run(kind: str, implementation: str, *tensors: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    if implementation == "native":
        return _kernel(kind, *tensors, out=out)
    return PRODUCTS[kind].torch(*tensors, out=out)


def _kernel_applies(kind: str, *tensors: torch.Tensor) -> bool:
    return (
        tensors[0].shape[1] <= MAX_KERNEL_ROWS
        and tensors[0].device.type == "cpu"
        and all(t.dtype == torch.float32 for t in tensors)
        and not torch.is_autocast_enabled("cpu")
        and kernel_status().available
    )


def _tuning_key(kind: str, *tensors: torch.Tensor) -> str:
    shape = "x".join(str(size) for size in _dimensions(kind, *tensors[:2]))
    return f"region_{kind}:{shape}:threads{torch.get_num_threads()}"


def _tune(kind: str, *tensors: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Time the kernel and torch on these inputs, interleaved, best of `_TUNING_REPEATS` after a warm-up, each into
    the output its warm-up call allocated; the choice ({"implementation": ..., "seconds": ...}) and the chosen
    product's result."""
    best = {"native": float("inf"), "torch": float("inf")}
    results = {}
    for repeat in range(_TUNING_REPEATS + 1):
        for implementation in best:
            start = time.perf_counter()
            results[implementation] = _run(kind, implementation, *tensors, out=results.get(implementation))
            elapsed = time.perf_counter() - start
            best[implementation] = min(best[implementation], elapsed) if repeat else best[implementation]
    chosen = "native" if best["native"] <= best["torch"] else "torch"
    return {"implementation": chosen, "seconds": best}, results[chosen]


def _product(kind: str, *tensors: torch.Tensor) -> torch.Tensor:
    if not _kernel_applies(kind, *tensors):
        return PRODUCTS[kind].torch(*tensors)
    key = _tuning_key(kind, *tensors)
    if key not in _choices:
        choice = stored_choice(key)
        if choice is None or choice.get("implementation") not in ("native", "torch"):
            choice, result = _tune(kind, *tensors)
            store_choice(key, choice)
            _choices[key] = choice
            return result
        _choices[key] = choice
    return _run(kind, _choices[key]["implementation"], *tensors)


def region_forward(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """
    Args:
        rows: (regions, rows, in_features) the unfolded input rows.
        weight: (regions, out_features, in_features).
        bias: (regions, out_features).

    Returns:
        (regions, rows, out_features) `rows[r] @ weight[r]^T + bias[r]` for every region.
    """
    return _product("forward", rows, weight, bias)


def region_input_gradient(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """
    Args:
        grad: (regions, rows, out_features) gradient of the convolution's output rows.
        weight: (regions, out_features, in_features).

    Returns:
        (regions, rows, in_features) `grad[r] @ weight[r]` for every region.
    """
    return _product("input_gradient", grad, weight)


def region_weight_gradient(grad: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """
    Args:
        grad: (regions, rows, out_features) gradient of the convolution's output rows.
        rows: (regions, rows, in_features) the unfolded input rows of the forward pass.

    Returns:
        (regions, out_features, in_features) `grad[r]^T @ rows[r]` for every region.
    """
    return _product("weight_gradient", grad, rows)


__all__ = [
    "MAX_KERNEL_ROWS",
    "PRODUCTS",
    "region_forward",
    "region_input_gradient",
    "region_weight_gradient",
]
