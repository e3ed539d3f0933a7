import torch

from benchmarks.reference_port import literal_port_of
from mnemodyn_hf import MnemoDynModel
from tests.conftest import tiny_config


def test_literal_port_computes_the_same_function_as_the_model():
    """The benchmark baseline is only fair if it computes what the model computes (float64: no rounding noise)."""
    torch.manual_seed(0)
    model = MnemoDynModel(tiny_config(reference_compatible=True)).double().eval()
    port = literal_port_of(model).eval()
    x = torch.randn(2, 64, 12, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(port(x), model(x).last_hidden_state, atol=1e-9)


def test_the_eager_worker_runs_without_the_native_kernels():
    """The eager baseline is the PyTorch path throughout (no region or wavelet kernels either), in its own process."""
    from benchmarks.bench_backbone import run_worker

    result = run_worker("mnemodyn_eager", "forward", "tiny", 1, 64, 1, "cpu", "fp32")
    assert result["field_kernel"].startswith("disabled by MNEMODYN_NATIVE_KERNELS=0"), result["field_kernel"]
