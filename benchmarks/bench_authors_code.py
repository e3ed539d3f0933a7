"""The authors' model code against the literal port and the default MnemoDyn: one process, same weights, interleaved.

The literal port (benchmarks/reference_port.py) stands in for the authors' code everywhere else, because that code
is not part of this project. This benchmark measures how the two relate on one machine. It imports the authors'
model package from a folder you pass: `coe/light/model` of a checkout of github.com/vietluong2110/MnemoDyn_Draft
(`orion.py`, `conv1d_optimize.py`, `dense_layer.py`), which needs `torchcde`, `pytorch_wavelets` and `einops`. It
builds their `StackedORionModel` at the released size with their own initialization, converts its state dict with
`mnemodyn_hf.hub.convert` into the port and the default model, and times, round by round, a forward pass (eval
mode, no gradient) and a training step (MSE reconstruction, backward, fused AdamW) of each; the best round after a
warm-up is kept. The authors' spline coefficients (computed in their Dataset) are computed once, outside the timing.

    python -m benchmarks.bench_authors_code --authors-model PATH/coe/light/model --json out.json
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import types
from pathlib import Path

import torch

from benchmarks.machine import machine_description, print_and_save
from benchmarks.reference_port import LiteralReferenceBackbone
from mnemodyn_hf import MnemoDynModel
from mnemodyn_hf.hub.convert import reference_config, reference_state_dict
from mnemodyn_hf.training.allocator import retain_freed_memory

#: The released 450-ROI model in the authors' hyper-parameter names (reference_implementation.md §1.1).
RELEASED_HPARAMS = dict(
    wave="db2", D=450, D_out=[450] * 4, dim_d=100, dim_k=300, h_rank=3, original_length=490, n_levels=5, nb=5,
    num_sparse_LC=4, K_dense=4, nonlinearity="tanh", interpol="spline", use_residual=True, scale=False,
    predict=False, use_mixed_precision=False, linear_bias=True,
)  # fmt: skip


def import_authors_model(folder: Path) -> types.ModuleType:
    """The authors' `orion` module, imported from `folder` as the package `authors_model` (it uses relative
    imports)."""
    if not (folder / "orion.py").is_file():
        raise FileNotFoundError(
            f"{folder} holds no orion.py; pass the coe/light/model folder of a MnemoDyn_Draft checkout."
        )
    package = types.ModuleType("authors_model")
    package.__path__ = [str(folder)]
    sys.modules["authors_model"] = package
    return importlib.import_module("authors_model.orion")


def build_models(orion) -> dict[str, torch.nn.Module]:
    """The authors' stack with its own random initialization, and the port and the default holding its weights."""
    torch.manual_seed(0)
    layers = len(RELEASED_HPARAMS["D_out"])
    defaults = {**RELEASED_HPARAMS, "D_out": RELEASED_HPARAMS["D_out"][0], "num_classes": 1}
    authors = orion.StackedORionModel(
        num_layers=layers, defaults=defaults, layer_kwargs=[{"D_out": defaults["D_out"]} for _ in range(layers)]
    )
    config = reference_config(RELEASED_HPARAMS, field_implementation="auto")
    state = reference_state_dict({f"model.{k}": v for k, v in authors.state_dict().items()}, config)
    default, inner = MnemoDynModel(config), MnemoDynModel(config)
    for model in (default, inner):
        model.load_state_dict(state)
    return {"authors": authors, "literal_port": LiteralReferenceBackbone(inner), "default": default}


def _inputs(batch: int):
    import torchcde  # the authors' dependency

    frames, rois = RELEASED_HPARAMS["original_length"], RELEASED_HPARAMS["D"]
    x = torch.randn(batch, frames, rois)
    coeffs = torchcde.hermite_cubic_coefficients_with_backward_differences(x)  # as their Dataset does
    grid = torch.arange(0, 1, 1 / frames, dtype=torch.float32)[None].repeat(batch, 1)  # their time grid
    return x, coeffs, grid


def _output(name: str, model: torch.nn.Module, x, coeffs, grid) -> torch.Tensor:
    if name == "authors":
        return model(x, coeffs, grid)
    out = model(x)
    return out if isinstance(out, torch.Tensor) else out.last_hidden_state


def run(authors_model: Path, batches=(1, 4), rounds=(6, 3)) -> dict:
    models = build_models(import_authors_model(Path(authors_model)))
    optimizers = {
        name: torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
        for name, model in models.items()
    }
    retain_freed_memory()  # as the pretraining loop, for every model
    rows = []
    for batch, batch_rounds in zip(batches, rounds, strict=True):
        x, coeffs, grid = _inputs(batch)
        for mode in ("forward", "train_step"):
            best = {name: float("inf") for name in models}
            for round_index in range(batch_rounds + 1):  # round 0 warms up
                for name, model in models.items():
                    model.train(mode == "train_step")
                    start = time.perf_counter()
                    if mode == "forward":
                        with torch.no_grad():
                            _output(name, model, x, coeffs, grid)
                    else:
                        torch.nn.functional.mse_loss(_output(name, model, x, coeffs, grid), x).backward()
                        optimizers[name].step()
                        optimizers[name].zero_grad(set_to_none=True)
                    if round_index:
                        best[name] = min(best[name], time.perf_counter() - start)
            rows.append({"batch": batch, "mode": mode, "rounds": batch_rounds, "seconds": best})
    return {
        "benchmark": "authors_code",
        "parameters": {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()},
        "rows": rows,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = [
        "| batch | mode | authors' code s | literal port s | default s | port vs authors | default vs authors "
        "| default vs port |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        s = row["seconds"]
        lines.append(
            f"| {row['batch']} | {row['mode']} | {s['authors']:.3f} | {s['literal_port']:.3f} | {s['default']:.3f} "
            f"| {s['authors'] / s['literal_port']:.2f}x | {s['authors'] / s['default']:.2f}x "
            f"| {s['literal_port'] / s['default']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--authors-model", type=Path, required=True, help="coe/light/model of a MnemoDyn_Draft checkout"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args.authors_model)
    print_and_save(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
