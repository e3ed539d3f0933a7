from benchmarks.bench_backbone import SIZES
from benchmarks.bench_step_budget import field_kernel_operations
from benchmarks.profile_backbone import cost_model

PEAKS = {"tanh_elements_per_second": 1e9, "sgemm_gflops": 100.0}


def test_the_fused_kernel_is_charged_its_counted_arithmetic_and_no_aten_activations():
    operations = field_kernel_operations(SIZES["released"], 4 * 490, backward=False)
    assert operations == 4 * 4 * 490 * 300 * 464 * 14  # layers x B x T x C x padded ROIs x forward operations
    training = field_kernel_operations(SIZES["released"], 4 * 490)
    assert training == operations // 14 * 36
    step = {"mode": "train_step", "fused_field_kernel": True, "flops": 1e9, "seconds": 2.0}
    cost = cost_model(step, PEAKS, elements=1000, operations=training)
    assert cost["activation_equivalents"] == 0
    assert cost["flop_seconds_at_peak"] == (1e9 + 2 * training) / 100e9
    assert cost["fraction_of_peak"] == cost["ideal_seconds"] / 2.0


def test_the_eager_path_is_charged_its_activations_at_aten_speed():
    step = {"mode": "train_step", "fused_field_kernel": False, "flops": 1e9, "seconds": 2.0}
    cost = cost_model(step, PEAKS, elements=1000, operations=123)
    assert cost["activation_equivalents"] == 3000  # forward, recompute and derivative
    assert cost["fused_field_operations"] == 0
    assert cost["flop_seconds_at_peak"] == 1e9 / 100e9
