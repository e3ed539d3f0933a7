import json

import pytest
import torch

from mnemodyn_hf import region_products
from mnemodyn_hf.modeling_mnemodyn import MnemoDynRegionConv
from mnemodyn_hf.native_kernels import KernelStatus, kernel_status
from mnemodyn_hf.region_products import MAX_KERNEL_ROWS, region_weight_gradient
from tests.conftest import slowed

native = pytest.mark.skipif(not kernel_status().available, reason=f"no native kernel: {kernel_status().reason}")


def _exact(grad: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return torch.bmm(grad.transpose(1, 2).double(), rows.double())


@native
@pytest.mark.parametrize(
    "regions, count, out_features, in_features",
    [(4, 4, 600, 3000), (3, 7, 13, 37), (1, 1, 1, 1), (2, 16, 9, 101), (1, 5, 17, 8), (2, MAX_KERNEL_ROWS, 6, 50)],
)
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_the_kernel_matches_the_exact_product(regions, count, out_features, in_features, offset):
    """Odd widths run scalar heads and tails; an output buffer offset by a few floats moves every row's alignment,
    and rows of one block must still share it (the non-temporal stores need aligned addresses)."""
    generator = torch.Generator().manual_seed(count)
    grad = torch.randn(regions, count, out_features, generator=generator)
    rows = torch.randn(regions, count, in_features, generator=generator)
    buffer = torch.full((regions * out_features * in_features + offset,), float("nan"))
    out = buffer[offset:].view(regions, out_features, in_features)
    entry = kernel_status().library.mnemodyn_region_weight_gradient
    assert entry(grad.data_ptr(), rows.data_ptr(), out.data_ptr(), regions, count, out_features, in_features, 2) == 0
    torch.testing.assert_close(out.double(), _exact(grad, rows), atol=1e-5 * count**0.5, rtol=1e-5)
    assert not buffer[:offset].isfinite().any()  # nothing written before the output


@native
def test_the_kernel_refuses_more_rows_than_it_holds():
    grad, rows = torch.randn(1, MAX_KERNEL_ROWS + 1, 3), torch.randn(1, MAX_KERNEL_ROWS + 1, 4)
    with pytest.raises(ValueError, match=f"at most {MAX_KERNEL_ROWS} rows per region"):
        region_products._kernel_product(grad, rows)
    torch.testing.assert_close(region_weight_gradient(grad, rows), _exact(grad, rows).float())  # bmm serves it


@pytest.fixture
def tuning_cache(monkeypatch, kernel_choice_file):
    """The loaded kernel, with its choice file under tmp_path and this process's choices forgotten."""
    monkeypatch.setattr(region_products, "_choices", {})
    return kernel_choice_file


@native
@pytest.mark.parametrize("slow", ["native", "bmm"])
def test_the_faster_product_is_kept_per_shape_and_reused(slow, monkeypatch, tuning_cache):
    """The slowed contender (100 ms of sleep per call on microseconds of work) is never chosen, the chosen product's
    result is returned by the timing call itself, and a fresh process state reads the stored choice."""
    monkeypatch.setitem(region_products._PRODUCTS, slow, slowed(region_products._PRODUCTS[slow]))
    grad, rows = torch.randn(2, 5, 7), torch.randn(2, 5, 33)
    torch.testing.assert_close(region_weight_gradient(grad, rows), _exact(grad, rows).float())
    (choice,) = json.loads(tuning_cache.read_text()).values()
    faster = "bmm" if slow == "native" else "native"
    assert choice["implementation"] == faster, choice["seconds"]

    monkeypatch.setattr(region_products, "_choices", {})
    monkeypatch.setattr(region_products, "_tune", lambda *a: pytest.fail("timed again instead of reusing"))
    used = []
    monkeypatch.setitem(region_products._PRODUCTS, faster, lambda g, r: used.append(faster) or torch.bmm(g.mT, r))
    region_weight_gradient(grad, rows)
    assert used == [faster]


def test_without_the_kernel_bmm_runs(monkeypatch):
    monkeypatch.setattr(region_products, "_tune", lambda *a: pytest.fail("nothing to time without the kernel"))
    monkeypatch.setattr(region_products, "_choices", {})
    grad, rows = torch.randn(2, 4, 7), torch.randn(2, 4, 9)
    with monkeypatch.context() as patch:
        patch.setattr(region_products, "kernel_status", lambda: KernelStatus(None, "no C compiler found"))
        torch.testing.assert_close(region_weight_gradient(grad, rows), _exact(grad, rows).float())
    # with the kernel loaded, other dtypes still go to bmm untimed (the kernel reads float32 only)
    torch.testing.assert_close(region_weight_gradient(grad.double(), rows.double()), _exact(grad, rows))


@native
def test_region_convolution_weight_gradient_through_the_kernel(monkeypatch, tuning_cache):
    """A convolution whose regions hold few positions (a coarse level of one sequence): with the kernel forced, the
    weight gradient equals the float64 autograd gradient of the same convolution."""
    monkeypatch.setitem(region_products._PRODUCTS, "bmm", slowed(region_products._PRODUCTS["bmm"]))
    conv = MnemoDynRegionConv(channels=6, kernel_size=5, num_regions=4)
    torch.nn.init.normal_(conv.weight)
    torch.nn.init.normal_(conv.bias)
    signal = torch.randn(1, 6, 15)
    conv(signal).square().sum().backward()
    exact = MnemoDynRegionConv(channels=6, kernel_size=5, num_regions=4).double()
    exact.load_state_dict(conv.state_dict())
    exact(signal.double()).square().sum().backward()
    (choice,) = json.loads(tuning_cache.read_text()).values()
    assert choice["implementation"] == "native"
    torch.testing.assert_close(conv.weight.grad.double(), exact.weight.grad, atol=1e-4, rtol=1e-5)
