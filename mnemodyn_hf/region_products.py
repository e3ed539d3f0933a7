"""The weight gradient of the region convolution, `grad_weight[r] = grad[r]^T @ rows[r]`: `torch.bmm`, or the native
kernel of `kernels/region_products.c` when a region has few rows.

With one sequence the coarse wavelet levels give each region 4-16 positions, so the product is an outer-product sum
as large as the weight (600 x 3000 per region at the released size) with an inner dimension of 4-16. A GEMM library
writes it at a fraction of the memory bandwidth; the kernel writes each row once, with non-temporal stores. Which of
the two runs is timed on the first product of each shape on this machine (interleaved, on the real inputs) and kept
beside the kernel library (`native_kernels.store_choice`), as the field contraction's choice is; on a tie the kernel
is kept. Without the kernel (`native_kernels.kernel_status()`), or off the CPU, or in another dtype, `torch.bmm` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .native_kernels import kernel_status, store_choice, stored_choice

#: The kernel serves regions of at most this many rows (positions x sequences); larger products are compute-bound,
#: where the GEMM library wins.
MAX_KERNEL_ROWS = 64
_TUNING_REPEATS = 3
_choices: dict[str, dict] = {}  # this process's choices, by `_tuning_key`


def _bmm_product(grad: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return torch.bmm(grad.transpose(1, 2), rows)


def _kernel_product(grad: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The native kernel on float32 CPU tensors (checked by `_kernel_applies`), made contiguous (`grad`, a view of
    the convolution's output gradient, is small; `rows` already is)."""
    grad, rows = grad.contiguous(), rows.contiguous()
    regions, count, out_features = grad.shape
    in_features = rows.shape[2]
    out = grad.new_empty(regions, out_features, in_features)
    entry = kernel_status().library.mnemodyn_region_weight_gradient
    threads = torch.get_num_threads()
    if entry(grad.data_ptr(), rows.data_ptr(), out.data_ptr(), regions, count, out_features, in_features, threads):
        raise ValueError(f"the region kernel takes at most {MAX_KERNEL_ROWS} rows per region (got {count})")
    return out


_PRODUCTS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "native": _kernel_product,
    "bmm": _bmm_product,
}


def _kernel_applies(grad: torch.Tensor, rows: torch.Tensor) -> bool:
    return (
        grad.shape[1] <= MAX_KERNEL_ROWS
        and grad.device.type == "cpu"
        and grad.dtype == rows.dtype == torch.float32
        and kernel_status().available
    )


def _tuning_key(grad: torch.Tensor, rows: torch.Tensor) -> str:
    regions, count, out_features = grad.shape
    return f"region_weight_gradient:{regions}x{count}x{out_features}x{rows.shape[2]}:threads{torch.get_num_threads()}"


def _tune(grad: torch.Tensor, rows: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Time both products on these inputs, interleaved, best of `_TUNING_REPEATS` after a warm-up; the choice
    ({"implementation": ..., "seconds": ...}) and the chosen product's result."""
    best = {name: float("inf") for name in _PRODUCTS}
    results = {}
    for repeat in range(_TUNING_REPEATS + 1):
        for name, product in _PRODUCTS.items():
            start = time.perf_counter()
            results[name] = product(grad, rows)
            elapsed = time.perf_counter() - start
            best[name] = min(best[name], elapsed) if repeat else best[name]  # the first is a warm-up
    chosen = "native" if best["native"] <= best["bmm"] else "bmm"
    return {"implementation": chosen, "seconds": best}, results[chosen]


def region_weight_gradient(grad: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """
    Args:
        grad: (regions, rows, out_features) gradient of the convolution's output rows.
        rows: (regions, rows, in_features) the unfolded input rows of the forward pass.

    Returns:
        (regions, out_features, in_features) `grad[r]^T @ rows[r]` for every region.
    """
    if not _kernel_applies(grad, rows):
        return _bmm_product(grad, rows)
    key = _tuning_key(grad, rows)
    if key not in _choices:
        choice = stored_choice(key)
        if choice is None or choice.get("implementation") not in _PRODUCTS:
            choice, result = _tune(grad, rows)
            store_choice(key, choice)
            _choices[key] = choice
            return result
        _choices[key] = choice
    return _PRODUCTS[_choices[key]["implementation"]](grad, rows)


__all__ = ["MAX_KERNEL_ROWS", "region_weight_gradient"]
