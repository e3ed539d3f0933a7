import pytest

from benchmarks.bench_field_kernel import format_table, run
from mnemodyn_hf import native_kernels


@pytest.mark.skipif(native_kernels._compiler() is None, reason="no C compiler on this machine")
def test_each_march_build_is_timed_and_checked_against_float64():
    report = run(marches=("native",), frames=5, repeats=0, channels=2, rois=21)
    (row,) = report["rows"]
    assert row["march"] == "native" and row["forward_seconds"] > 0 and row["max_abs_error"] < 1e-5
    assert row["backward_without_derivative_gradient_seconds"] > 0  # the working tree's null-pointer case runs
    assert "| working tree | native |" in format_table(report) and "cpu_isa" in report["machine"]
