import json

import pytest
import torch

from mnemodyn_hf import region_products
from mnemodyn_hf.modeling_mnemodyn import MnemoDynRegionConv
from mnemodyn_hf.native_kernels import KernelStatus, kernel_status
from mnemodyn_hf.region_products import (
    MAX_KERNEL_ROWS,
    region_forward,
    region_input_gradient,
    region_weight_gradient,
)
from tests.conftest import slowed

native = pytest.mark.skipif(not kernel_status().available, reason=f"no native kernel: {kernel_status().reason}")
KINDS = ("forward", "input_gradient", "weight_gradient")
PUBLIC = {"forward": region_forward, "input_gradient": region_input_gradient, "weight_gradient": region_weight_gradient}


def _inputs(kind: str, regions: int, count: int, out_features: int, in_features: int, seed: int = 0) -> list:
    generator = torch.Generator().manual_seed(seed)
    shapes = {
        "forward": [(regions, count, in_features), (regions, out_features, in_features), (regions, out_features)],
        "input_gradient": [(regions, count, out_features), (regions, out_features, in_features)],
        "weight_gradient": [(regions, count, out_features), (regions, count, in_features)],
    }
    return [torch.randn(shape, generator=generator) for shape in shapes[kind]]


def _exact(kind: str, *tensors: torch.Tensor) -> torch.Tensor:
    return region_products.PRODUCTS[kind].torch(*(t.double() for t in tensors))


@native
@pytest.mark.parametrize("kind", ["forward", "input_gradient"])
@pytest.mark.parametrize(
    "regions, count, out_features, in_features",
    [
        (4, 4, 600, 3000),
        (1, 62, 600, 3000),  # the released size's finest level
        (3, 7, 13, 37),
        (1, 1, 1, 1),
        (2, 9, 9, 1101),
        (1, 5, 17, 8),
        (2, 8, 4, 24),
        (2, 17, 11, 45),
        (2, 31, 7, 77),
        (1, MAX_KERNEL_ROWS, 5, 130),
    ],
)
def test_the_forward_and_input_gradient_kernels_match_the_exact_products(
    kind, regions, count, out_features, in_features
):
    """Row counts off the unrolled 4 and 8 and off the row blocks (4, and the input gradient's 6 above 8 rows), output
    rows off the forward's blocks of 3 or 6, widths off the vector lanes, the input gradient's 512-column tiles and its
    panels (a last panel of fewer vectors, then single columns): every remainder path."""
    tensors = _inputs(kind, regions, count, out_features, in_features, seed=count)
    exact = _exact(kind, *tensors)
    scale = (in_features if kind == "forward" else out_features) ** 0.5
    torch.testing.assert_close(region_products._kernel(kind, *tensors).double(), exact, atol=1e-5 * scale, rtol=1e-5)


@native
@pytest.mark.parametrize(
    "regions, count, out_features, in_features",
    [(4, 4, 600, 3000), (3, 7, 13, 37), (1, 1, 1, 1), (2, 16, 9, 101), (1, 5, 17, 8), (2, MAX_KERNEL_ROWS, 6, 50)],
)
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_the_weight_gradient_kernel_matches_the_exact_product(regions, count, out_features, in_features, offset):
    """Odd widths run scalar heads and tails; an output buffer offset by a few floats moves every row's alignment,
    and rows of one block must still share it (the non-temporal stores need aligned addresses)."""
    grad, rows = _inputs("weight_gradient", regions, count, out_features, in_features, seed=count)
    buffer = torch.full((regions * out_features * in_features + offset,), float("nan"))
    out = buffer[offset:].view(regions, out_features, in_features)
    entry = kernel_status().library.mnemodyn_region_weight_gradient
    assert entry(grad.data_ptr(), rows.data_ptr(), out.data_ptr(), regions, count, out_features, in_features, 2) == 0
    exact = _exact("weight_gradient", grad, rows)
    torch.testing.assert_close(out.double(), exact, atol=1e-5 * count**0.5, rtol=1e-5)
    assert not buffer[:offset].isfinite().any()  # nothing written before the output


@native
@pytest.mark.parametrize("kind", KINDS)
def test_a_kernel_refuses_more_rows_than_it_serves_and_torch_serves_them(kind):
    limit = MAX_KERNEL_ROWS
    tensors = _inputs(kind, 1, limit + 1, 3, 4)
    with pytest.raises(ValueError, match=f"at most {limit} rows per region"):
        region_products._kernel(kind, *tensors)
    torch.testing.assert_close(PUBLIC[kind](*tensors), _exact(kind, *tensors).float())


@pytest.fixture
def tuning_cache(monkeypatch, kernel_choice_file):
    """The loaded kernel, with its choice file under tmp_path and this process's choices forgotten."""
    monkeypatch.setattr(region_products, "_choices", {})
    return kernel_choice_file


def _slow(monkeypatch, implementation: str) -> None:
    """Make one implementation of every product slow (100 ms of sleep per call, on microseconds of work)."""
    if implementation == "native":
        monkeypatch.setattr(region_products, "_kernel", slowed(region_products._kernel))
    else:
        for kind, product in region_products.PRODUCTS.items():
            slow_product = region_products._Product(product.entry, slowed(product.torch))
            monkeypatch.setitem(region_products.PRODUCTS, kind, slow_product)


@native
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slow", ["native", "torch"])
def test_the_faster_product_is_kept_per_kind_and_shape_and_reused(kind, slow, monkeypatch, tuning_cache):
    """The slowed contender is never chosen, the chosen product's result is returned by the timing call itself, and a
    fresh process state reads the stored choice."""
    _slow(monkeypatch, slow)
    tensors = _inputs(kind, 2, 5, 7, 33)
    torch.testing.assert_close(PUBLIC[kind](*tensors), _exact(kind, *tensors).float())
    ((key, choice),) = json.loads(tuning_cache.read_text()).items()
    faster = "torch" if slow == "native" else "native"
    assert key.startswith(f"region_{kind}:2x5x7x33:") and choice["implementation"] == faster, choice["seconds"]

    monkeypatch.setattr(region_products, "_choices", {})
    monkeypatch.setattr(region_products, "_tune", lambda *a: pytest.fail("timed again instead of reusing"))
    used = []
    monkeypatch.setattr(region_products, "_run", lambda kind, implementation, *t: used.append(implementation))
    PUBLIC[kind](*tensors)
    assert used == [faster]


@pytest.mark.parametrize("kind", KINDS)
def test_without_the_kernel_torch_runs(kind, monkeypatch):
    monkeypatch.setattr(region_products, "_tune", lambda *a: pytest.fail("nothing to time without the kernel"))
    monkeypatch.setattr(region_products, "_choices", {})
    tensors = _inputs(kind, 2, 4, 7, 9)
    with monkeypatch.context() as patch:
        patch.setattr(region_products, "kernel_status", lambda: KernelStatus(None, "no C compiler found"))
        torch.testing.assert_close(PUBLIC[kind](*tensors), _exact(kind, *tensors).float())
    # with the kernel loaded, other dtypes and autocast still go to torch untimed (the kernels read float32 only)
    torch.testing.assert_close(PUBLIC[kind](*(t.double() for t in tensors)), _exact(kind, *tensors))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert PUBLIC[kind](*tensors).dtype == torch.bfloat16


@native
def test_region_convolution_through_the_kernels(monkeypatch, tuning_cache):
    """A convolution whose regions hold few positions (a coarse level of one sequence): with the kernels forced, its
    output and its signal, weight and bias gradients equal float64 autograd's through the same convolution."""
    _slow(monkeypatch, "torch")
    conv = MnemoDynRegionConv(channels=6, kernel_size=5, num_regions=4)
    torch.nn.init.normal_(conv.weight)
    torch.nn.init.normal_(conv.bias)
    signal = torch.randn(1, 6, 15, requires_grad=True)
    out = conv(signal)
    out.square().sum().backward()
    exact = MnemoDynRegionConv(channels=6, kernel_size=5, num_regions=4).double()
    exact.load_state_dict(conv.state_dict())
    exact_signal = signal.detach().double().requires_grad_()
    exact_out = exact(exact_signal)
    exact_out.square().sum().backward()
    choices = json.loads(tuning_cache.read_text())
    assert sorted(key.split(":")[0] for key in choices) == [f"region_{kind}" for kind in sorted(KINDS)]
    assert all(choice["implementation"] == "native" for choice in choices.values())
    torch.testing.assert_close(out.double(), exact_out, atol=1e-5, rtol=1e-5)
    for ours, theirs in ((signal, exact_signal), (conv.weight, exact.weight), (conv.bias, exact.bias)):
        torch.testing.assert_close(ours.grad.double(), theirs.grad, atol=1e-4, rtol=1e-5)


@native
@pytest.mark.parametrize("kind", KINDS)
def test_timing_reuses_each_contenders_output_after_the_warm_up(kind, monkeypatch, tuning_cache):
    """Every timed call writes into the output its contender's warm-up call returned (no fresh pages timed)."""
    calls, run = [], region_products._run

    def recording(kind, implementation, *tensors, out=None):
        result = run(kind, implementation, *tensors, out=out)
        calls.append((implementation, out, result))
        return result

    monkeypatch.setattr(region_products, "_run", recording)
    tensors = _inputs(kind, 2, 5, 7, 33)
    torch.testing.assert_close(PUBLIC[kind](*tensors), _exact(kind, *tensors).float())
    for implementation in ("native", "torch"):
        own = [(out, result) for name, out, result in calls if name == implementation]
        assert len(own) == region_products._TUNING_REPEATS + 1 and own[0][0] is None
        assert all(out is own[0][1] and result is out for out, result in own[1:])
