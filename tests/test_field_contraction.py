import json

import pytest
import torch

from mnemodyn_hf import field_contraction
from mnemodyn_hf.field_contraction import contract_vector_field
from mnemodyn_hf.native_kernels import KernelStatus, kernel_status
from tests.conftest import slowed


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


native = pytest.mark.skipif(not kernel_status().available, reason=f"fused kernel: {kernel_status().reason}")


@pytest.mark.parametrize("implementation", ["eager", pytest.param("native", marks=native)])
def test_the_derivative_gradient_is_skipped_when_not_needed_and_the_others_are_unchanged(implementation):
    generator = torch.Generator().manual_seed(3)
    code, derivative = torch.randn(9, 3, generator=generator), torch.randn(9, 37, generator=generator)
    weight, bias = torch.randn(37 * 4, 3, generator=generator), torch.randn(37 * 4, generator=generator)
    grads = {}
    for derivative_needs_grad in (True, False):  # the reference-compatible derivative carries no gradient
        inputs = [t.clone().requires_grad_(t is not derivative or derivative_needs_grad) for t in (code, derivative)]
        inputs += [weight.clone().requires_grad_(), bias.clone().requires_grad_()]
        contract_vector_field(*inputs, torch.tanh, 37, implementation).pow(2).sum().backward()
        grads[derivative_needs_grad] = [t.grad for t in inputs]
    assert grads[True][1] is not None and grads[False][1] is None
    for index in (0, 2, 3):
        assert torch.equal(grads[True][index], grads[False][index])


def _float32_inputs(n, bottleneck, rois, channels, scale=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(shape, generator=generator) * s).requires_grad_()
        for shape, s in (
            ((n, bottleneck), scale),
            ((n, rois), 1.0),
            ((rois * channels, bottleneck), 0.5),
            ((rois * channels,), 0.2),
        )
    ]


def _value_and_gradients(inputs, implementation, threads=None):
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        velocity = contract_vector_field(*inputs, torch.tanh, 7, implementation)
        velocity.backward(torch.linspace(-1, 1, velocity.numel()).view_as(velocity))
    finally:
        torch.set_num_threads(previous)
    return [velocity.detach()] + [t.grad for t in inputs]


@native
@pytest.mark.parametrize(
    "n, bottleneck, rois, channels",
    [(1, 1, 1, 1), (17, 3, 19, 5), (5, 4, 7, 2), (40, 5, 33, 16), (33, 2, 450, 3)],  # K 1-4 unrolled, 5 buffered
)
def test_the_fused_kernel_matches_the_eager_path_and_its_gradients(n, bottleneck, rois, channels):
    inputs = _float32_inputs(n, bottleneck, rois, channels)
    for fused, eager in zip(_value_and_gradients(inputs, "native"), _value_and_gradients(inputs, "eager"), strict=True):
        assert torch.allclose(fused, eager, rtol=1e-5, atol=2e-6 * max(1.0, eager.abs().max().item()))


@native
def test_the_fused_kernel_saturates_like_tanh_and_does_not_depend_on_the_thread_count():
    inputs = _float32_inputs(21, 3, 37, 4, scale=200.0)  # past the |x| = 9 clamp, in SIMD lanes and the tail
    one, two = _value_and_gradients(inputs, "native", threads=1), _value_and_gradients(inputs, "native", threads=2)
    eager = _value_and_gradients(inputs, "eager")
    assert all(torch.isfinite(t).all() for t in one)
    # float32 sums of 37 saturated terms in another order: the equivalence test's scale-relative tolerance (a 4-lane
    # SSE/NEON build differs by 2e-5 on values of 20, 1e-6 relative)
    assert torch.allclose(one[0], eager[0], rtol=1e-5, atol=2e-6 * max(1.0, eager[0].abs().max().item()))
    assert torch.equal(one[0], two[0]) and torch.equal(one[2], two[2])  # per-frame work: same sums in any split
    assert torch.allclose(one[3], two[3], rtol=1e-5, atol=1e-6)  # weight gradient: threads' partial sums added


@native
def test_a_nan_input_gives_nan_in_its_own_frame_as_in_the_eager_path():
    inputs = _float32_inputs(9, 3, 37, 4)
    with torch.no_grad():
        inputs[0][4, 1] = float("nan")  # one frame's bottleneck code
    fused, eager = _value_and_gradients(inputs, "native")[0], _value_and_gradients(inputs, "eager")[0]
    assert torch.equal(fused.isnan(), eager.isnan()) and fused[4].isnan().all() and not fused[:4].isnan().any()


def test_native_is_refused_where_it_does_not_apply_and_auto_falls_back(monkeypatch):
    inputs = [t.detach().double() for t in _float32_inputs(5, 2, 3, 4)]
    with pytest.raises(ValueError, match="float32 CPU tensors only; use field_implementation='eager'"):
        contract_vector_field(*inputs, torch.tanh, 2, "native")
    with pytest.raises(ValueError, match="implementation must be one of"):
        contract_vector_field(*inputs, torch.tanh, 2, "fused")
    monkeypatch.setattr(field_contraction, "kernel_status", lambda: KernelStatus(None, "no C compiler found"))
    single = [t.float() for t in inputs]
    with pytest.raises(RuntimeError, match="unavailable: no C compiler found; set field_implementation='eager'"):
        contract_vector_field(*single, torch.tanh, 2, "native")
    assert torch.equal(
        contract_vector_field(*single, torch.tanh, 2, "auto"), contract_vector_field(*single, torch.tanh, 2, "eager")
    )


@pytest.fixture
def tuning_cache(monkeypatch, kernel_choice_file):
    """The loaded kernel, with its choice file under tmp_path and this process's choices forgotten."""
    monkeypatch.setattr(field_contraction, "_choices", {})
    monkeypatch.setattr(field_contraction, "TUNING_FRAMES", 8)
    return kernel_choice_file


@native
@pytest.mark.parametrize("slow", ["native", "eager"])
def test_auto_keeps_whichever_of_kernel_and_eager_is_faster_and_reuses_the_choice(slow, monkeypatch, tuning_cache):
    """The slowed contender (100 ms of sleep per call, on microseconds of work; a backward pass of either can take
    60 ms when another process holds the cores) is never chosen; the choice is stored beside the library and a fresh
    process state reads it instead of timing again."""
    if slow == "native":
        monkeypatch.setattr(field_contraction, "_run_kernel", slowed(field_contraction._run_kernel))
    else:
        eager = field_contraction._ChunkedFieldContraction
        monkeypatch.setattr(eager, "forward", staticmethod(slowed(eager.forward)))
    inputs = _float32_inputs(6, 3, 5, 4)
    contract_vector_field(*inputs, torch.tanh, 2, "auto").sum().backward()
    faster = "eager" if slow == "native" else "native"
    (choice,) = json.loads(tuning_cache.read_text()).values()
    assert choice["inference"] == choice["training"] == faster, choice["seconds"]
    assert oct(tuning_cache.stat().st_mode & 0o777) == "0o600"

    monkeypatch.setattr(field_contraction, "_choices", {})
    monkeypatch.setattr(field_contraction, "_tune", lambda *a: pytest.fail("timed again instead of reusing"))
    used = []
    monkeypatch.setattr(field_contraction._NativeTanhFieldContraction, "apply", lambda *a: used.append(1) or a[0])
    with torch.no_grad():
        contract_vector_field(*inputs, torch.tanh, 2, "auto")
    assert used == ([1] if faster == "native" else [])
    contract_vector_field(*[t.detach() for t in inputs], torch.tanh, 2, "native")  # native still forces the kernel
    assert len(used) == (2 if faster == "native" else 1)


@native
def test_the_kernel_is_never_handed_a_strided_tensor():
    # it reads raw pointers: a transposed copy would be read in the wrong order, silently
    strided = torch.zeros(4, 3).t()
    with pytest.raises(ValueError, match="contiguous"):
        field_contraction._run_kernel("mnemodyn_tanh_field_forward", (strided,), 3, 1, 1, 4, 1)


@native
def test_the_kernel_refuses_an_roi_axis_the_caller_did_not_pad():
    # every ROI runs in vector lanes: an unpadded count is an error, not a silently partial sum
    frames, bottleneck, channels, rois = 2, 1, 1, 3
    code, derivative = torch.zeros(frames, bottleneck), torch.zeros(frames, rois)
    weight, bias, velocity = torch.zeros(bottleneck, channels, rois), torch.zeros(channels, rois), torch.zeros(2, 1)
    with pytest.raises(ValueError, match="zero-padded to a multiple of 16"):
        field_contraction._run_kernel(
            "mnemodyn_tanh_field_forward",
            (code, derivative, weight, bias, velocity),
            frames,
            bottleneck,
            channels,
            rois,
            1,
        )
