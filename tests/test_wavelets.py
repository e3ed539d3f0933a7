import numpy as np
import pytest
import pywt
import torch

from mnemodyn_hf import wavelets
from mnemodyn_hf.configuration_mnemodyn import SUPPORTED_WAVELETS
from mnemodyn_hf.native_kernels import KernelStatus, kernel_status
from mnemodyn_hf.wavelets import analysis_filter_bank, dwt, idwt, synthesis_filter_bank

LENGTHS = [1, 2, 3, 7, 8, 31, 64, 245]


@pytest.mark.parametrize("wavelet", SUPPORTED_WAVELETS)
def test_dwt_idwt_match_pywt_and_reconstruct(wavelet):
    rng = np.random.default_rng(0)
    analysis = analysis_filter_bank(wavelet, torch.float64)
    synthesis = synthesis_filter_bank(wavelet, torch.float64)
    for length in LENGTHS:
        signal = rng.standard_normal((2, 3, length))
        approximation, detail = dwt(torch.from_numpy(signal), analysis)
        expected_a, expected_d = pywt.dwt(signal, wavelet, mode="periodization")
        assert approximation.shape[-1] == (length + 1) // 2
        np.testing.assert_allclose(approximation.numpy(), expected_a, atol=1e-6, err_msg=f"{wavelet} N={length}")
        np.testing.assert_allclose(detail.numpy(), expected_d, atol=1e-6, err_msg=f"{wavelet} N={length}")

        reconstruction = idwt(approximation, detail, synthesis).numpy()
        expected = pywt.idwt(expected_a, expected_d, wavelet, mode="periodization")
        np.testing.assert_allclose(reconstruction, expected, atol=1e-6, err_msg=f"{wavelet} N={length}")
        np.testing.assert_allclose(reconstruction[..., :length], signal, atol=1e-6, err_msg=f"{wavelet} N={length}")


def test_float32_transforms_agree_with_pywt_to_1e6():
    signal = np.random.default_rng(1).standard_normal((4, 490)).astype(np.float32)
    approximation, detail = dwt(torch.from_numpy(signal), analysis_filter_bank("db2"))
    expected_a, expected_d = pywt.dwt(signal.astype(np.float64), "db2", mode="periodization")
    assert np.abs(approximation.numpy() - expected_a).max() < 1e-5
    assert np.abs(detail.numpy() - expected_d).max() < 1e-5
    back = idwt(approximation, detail, synthesis_filter_bank("db2")).numpy()
    assert np.abs(back - signal).max() < 1e-5


@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym4", "bior2.2", "db10"])
def test_each_transform_has_the_gradient_of_its_own_map(wavelet):
    # each transform on its own (a composition could hide errors that cancel), biorthogonal included, at lengths
    # shorter than the filter, where the periodic extension wraps round the signal several times
    analysis = analysis_filter_bank(wavelet, torch.float64)
    synthesis = synthesis_filter_bank(wavelet, torch.float64)
    for length in (1, 2, 3, 8, 33):
        signal = torch.randn(2, 3, length, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x: dwt(x, analysis), (signal,)), f"dwt {wavelet} N={length}"
        bands = [torch.randn(2, 3, (length + 1) // 2, dtype=torch.float64, requires_grad=True) for _ in range(2)]
        assert torch.autograd.gradcheck(lambda a, d: idwt(a, d, synthesis), bands), f"idwt {wavelet} N={length}"


def test_transforms_carry_gradients_through_the_model_path():
    signal = torch.randn(2, 5, 33, dtype=torch.float64, requires_grad=True)
    analysis, synthesis = analysis_filter_bank("sym4", torch.float64), synthesis_filter_bank("sym4", torch.float64)
    assert torch.autograd.gradcheck(lambda x: idwt(*dwt(x, analysis), synthesis), (signal,))
    approximation, _ = dwt(signal, analysis)  # one band used: the other's gradient is zero
    (gradient,) = torch.autograd.grad(approximation.sum(), signal)
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0


def test_filters_with_a_gradient_are_refused():
    filters = analysis_filter_bank("db2").requires_grad_()
    with pytest.raises(ValueError, match="constants"):
        dwt(torch.randn(3, 8), filters)


def test_idwt_rejects_mismatched_bands():
    with pytest.raises(ValueError, match="equal shape"):
        idwt(torch.zeros(3, 4), torch.zeros(3, 5), synthesis_filter_bank("db2"))


def test_dmey_is_not_offered():
    assert "dmey" not in SUPPORTED_WAVELETS and "db2" in SUPPORTED_WAVELETS


native = pytest.mark.skipif(not kernel_status().available, reason=f"no native kernels: {kernel_status().reason}")


def _float64_gradients(function, inputs, grads):
    inputs = [t.detach().double().requires_grad_() for t in inputs]
    outputs = function(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    torch.autograd.backward(outputs, [g.double() for g in grads])
    return [t.grad for t in inputs]


@native
@pytest.mark.parametrize("wavelet", SUPPORTED_WAVELETS)
def test_the_native_kernels_match_pywt_and_the_float64_gradients(wavelet, monkeypatch):
    """float32 on the CPU runs the C kernels (counted); values against PyWavelets, gradients against the float64
    tensor path (itself gradchecked above), at lengths shorter than the filter, odd and even."""
    calls = []
    run = wavelets._run_native
    monkeypatch.setattr(wavelets, "_run_native", lambda entry, *a: calls.append(entry) or run(entry, *a))
    analysis, synthesis = analysis_filter_bank(wavelet), synthesis_filter_bank(wavelet)
    generator = torch.Generator().manual_seed(0)
    for length in [*LENGTHS, 490]:
        signal = torch.randn(2, 3, length, generator=generator, requires_grad=True)
        approximation, detail = dwt(signal, analysis)
        expected_a, expected_d = pywt.dwt(signal.detach().double().numpy(), wavelet, mode="periodization")
        np.testing.assert_allclose(approximation.detach().numpy(), expected_a, atol=2e-5, err_msg=f"N={length}")
        np.testing.assert_allclose(detail.detach().numpy(), expected_d, atol=2e-5, err_msg=f"N={length}")
        grads = [torch.randn(approximation.shape, generator=generator) for _ in range(2)]
        torch.autograd.backward((approximation, detail), grads)
        (expected,) = _float64_gradients(lambda x: dwt(x, analysis.double()), [signal], grads)
        torch.testing.assert_close(signal.grad.double(), expected, atol=2e-5, rtol=1e-5)

        bands = [t.detach().requires_grad_() for t in (approximation, detail)]
        reconstruction = idwt(*bands, synthesis)
        expected = pywt.idwt(expected_a, expected_d, wavelet, mode="periodization")
        np.testing.assert_allclose(reconstruction.detach().numpy(), expected, atol=2e-5, err_msg=f"N={length}")
        grad = torch.randn(reconstruction.shape, generator=generator)
        reconstruction.backward(grad)
        expected_grads = _float64_gradients(lambda a, d: idwt(a, d, synthesis.double()), bands, [grad])
        for ours, theirs in zip([b.grad for b in bands], expected_grads, strict=True):
            torch.testing.assert_close(ours.double(), theirs, atol=2e-5, rtol=1e-5)
    assert calls.count("mnemodyn_dwt") == calls.count("mnemodyn_idwt_adjoint") == len(LENGTHS) + 1


def test_without_the_kernels_or_in_float64_the_tensor_path_runs(monkeypatch):
    monkeypatch.setattr(wavelets, "_run_native", lambda *a: pytest.fail("the native kernels ran"))
    signal = torch.randn(3, 33)
    with monkeypatch.context() as patch:
        patch.setattr(wavelets, "kernel_status", lambda: KernelStatus(None, "no C compiler found"))
        approximation, detail = dwt(signal, analysis_filter_bank("db2"))
        idwt(approximation, detail, synthesis_filter_bank("db2"))
    dwt(signal.double(), analysis_filter_bank("db2", torch.float64))
