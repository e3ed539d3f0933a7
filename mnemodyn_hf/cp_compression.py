"""Compress a trained model's region convolutions into CP (canonical polyadic) factors with tensorly."""

from __future__ import annotations

import torch

from .modeling_mnemodyn import MnemoDynCPRegionConv, MnemoDynPreTrainedModel, MnemoDynRegionConv


@torch.no_grad()
def compress_operators(
    model: MnemoDynPreTrainedModel, rank: int, n_iter_max: int = 200, seed: int = 0
) -> dict[str, float]:
    """Replace every full [`MnemoDynRegionConv`] of `model` by a rank-`rank` [`MnemoDynCPRegionConv`] fitted
    with `tensorly.decomposition.parafac` (ALS, SVD initialisation), in place; `model.config.operator_cp_rank`
    is set so the result saves and loads with `save_pretrained` / `from_pretrained`.

    Returns:
        {module name: relative reconstruction error ||W - W_cp|| / ||W||}.
    """
    try:
        import tensorly as tl
        from tensorly.decomposition import parafac
    except ImportError as error:
        raise ImportError("CP compression needs tensorly: pip install 'mnemodyn-hf[cp]'.") from error

    errors = {}
    targets = [(name, module) for name, module in model.named_modules() if isinstance(module, MnemoDynRegionConv)]
    if not targets:
        raise ValueError("the model has no full region convolutions to compress (already CP-factored?).")
    with tl.backend_context("pytorch"):
        for name, module in targets:
            kernel = module.weight.detach().double().cpu()
            decomposition = parafac(kernel, rank=rank, init="svd", n_iter_max=n_iter_max, random_state=seed)
            regions, outputs, inputs, taps = (factor.to(module.weight) for factor in decomposition.factors)
            outputs = outputs * decomposition.weights.to(module.weight)  # absorb the CP weights
            factored = MnemoDynCPRegionConv(module.weight.shape[1], module.kernel_size, module.num_regions, rank)
            factored.to(module.weight)
            for parameter, value in zip(
                (factored.region_factors, factored.output_factors, factored.input_factors, factored.tap_factors),
                (regions, outputs, inputs, taps),
            ):
                parameter.copy_(value)
            factored.bias.copy_(module.bias)
            errors[name] = float((factored.rebuild_kernel().double() - kernel).norm() / kernel.norm())
            parent, _, child = name.rpartition(".")
            model.get_submodule(parent)._modules[child] = factored
    model.config.operator_cp_rank = rank
    return errors


__all__ = ["compress_operators"]
