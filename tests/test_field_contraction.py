import pytest
import torch

from mnemodyn_hf.field_contraction import contract_vector_field


def _dense(code, derivative, weight, bias, activation):
    rois, channels = derivative.shape[1], weight.shape[0] // derivative.shape[1]
    field = activation(code @ weight.t() + bias).view(-1, rois, channels)
    return torch.einsum("nrc,nr->nc", field, derivative)


@pytest.mark.parametrize("activation", [torch.tanh, torch.nn.Tanh(), torch.sigmoid, torch.nn.functional.gelu])
@pytest.mark.parametrize("frames_per_chunk", [1, 4, 100])
def test_chunked_contraction_matches_the_dense_formula_and_its_gradients(activation, frames_per_chunk):
    torch.manual_seed(0)
    n, r, rois, channels = 9, 3, 5, 4
    inputs = (
        torch.randn(n, r, dtype=torch.float64, requires_grad=True),
        torch.randn(n, rois, dtype=torch.float64, requires_grad=True),
        torch.randn(rois * channels, r, dtype=torch.float64, requires_grad=True),
        torch.randn(rois * channels, dtype=torch.float64, requires_grad=True),
    )
    chunked = contract_vector_field(*inputs, activation, frames_per_chunk)
    assert torch.allclose(chunked, _dense(*inputs, activation))
    assert torch.autograd.gradcheck(lambda *a: contract_vector_field(*a, activation, frames_per_chunk), inputs)


def test_gradient_is_skipped_for_inputs_that_do_not_need_it():
    code = torch.randn(6, 2, requires_grad=True)
    derivative = torch.randn(6, 3)  # the reference-compatible derivative carries no gradient
    weight, bias = torch.randn(12, 2, requires_grad=True), torch.randn(12, requires_grad=True)
    contract_vector_field(code, derivative, weight, bias, torch.tanh, 2).sum().backward()
    assert derivative.grad is None and code.grad is not None and weight.grad is not None
