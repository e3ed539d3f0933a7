import pytest
import torch
from transformers import AutoModel

from mnemodyn_hf import MnemoDynModel
from mnemodyn_hf.cp_compression import compress_operators
from mnemodyn_hf.modeling_mnemodyn import MnemoDynCPRegionConv, MnemoDynRegionConv
from tests.conftest import tiny_config


def test_cp_convolution_equals_the_convolution_with_its_rebuilt_kernel():
    torch.manual_seed(0)
    cp = MnemoDynCPRegionConv(channels=6, kernel_size=5, num_regions=3, rank=4)
    for parameter in cp.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    full = MnemoDynRegionConv(channels=6, kernel_size=5, num_regions=3)
    with torch.no_grad():
        full.weight.copy_(cp.rebuild_kernel())
        full.bias.copy_(cp.bias)
    for length in (23, 24, 7):
        x = torch.randn(2, 6, length)
        assert torch.allclose(cp(x), full(x), atol=1e-5)


def test_default_keeps_full_kernels_and_cp_cuts_parameters():
    full = MnemoDynModel(tiny_config())
    factored = MnemoDynModel(tiny_config(operator_cp_rank=2))
    assert all(isinstance(m, MnemoDynRegionConv) for m in full.layers[0].operator.region_convs)
    assert all(isinstance(m, MnemoDynCPRegionConv) for m in factored.layers[0].operator.region_convs)
    assert sum(p.numel() for p in factored.parameters()) < sum(p.numel() for p in full.parameters())
    x = torch.randn(2, 64, 12)
    out = factored(x).last_hidden_state
    out.square().mean().backward()
    assert all(p.grad is not None for p in factored.parameters())


def test_compressing_low_rank_kernels_is_exact_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = MnemoDynModel(tiny_config()).eval()
    with torch.no_grad():  # give every kernel an exact CP rank of 3
        for module in model.modules():
            if isinstance(module, MnemoDynRegionConv):
                r, c, _, t = module.weight.shape
                a, b, i, d = (torch.randn(n, 3) for n in (r, c, c, t))
                module.weight.copy_(torch.einsum("rq,oq,iq,tq->roit", a, b, i, d) / 10)
    x = torch.randn(2, 64, 12)
    with torch.no_grad():
        before = model(x).last_hidden_state
    errors = compress_operators(model, rank=3)
    assert len(errors) == model.config.num_layers * model.config.wavelet_levels
    assert max(errors.values()) < 1e-4
    with torch.no_grad():
        assert torch.allclose(model(x).last_hidden_state, before, atol=1e-4)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert loaded.config.operator_cp_rank == 3
    with torch.no_grad():
        assert torch.equal(loaded(x).last_hidden_state, model(x).last_hidden_state)


def test_compression_reports_the_error_of_a_full_rank_kernel():
    torch.manual_seed(0)
    model = MnemoDynModel(tiny_config(num_layers=1))
    errors = compress_operators(model, rank=2)
    assert all(0 < error < 1 for error in errors.values())  # random kernels are not rank 2: a real, bounded error
    with pytest.raises(ValueError, match="no full region convolutions"):
        compress_operators(model, rank=2)
