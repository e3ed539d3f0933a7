import pytest

from benchmarks.bench_region_products import format_table, run
from mnemodyn_hf import region_products
from mnemodyn_hf.native_kernels import kernel_status


@pytest.mark.skipif(not kernel_status().available, reason="no native kernel on this machine")
def test_products_and_steps_are_timed_side_by_side_and_the_tuned_choice_is_restored():
    applies = region_products._kernel_applies
    report = run(size="tiny", repeats=1, rounds=1)
    assert [row["rows"] for row in report["products"]] == [4, 8]
    assert all(set(row["seconds"]) == {"bmm", "native"} for row in report["products"])
    assert set(report["step"]["best"]) == {"tuned", "bmm"} and report["step"]["best"]["bmm"] > 0
    assert region_products._kernel_applies is applies  # forcing bmm for the comparison does not outlive it
    table = format_table(report)
    assert "| 4 |" in table and "| bmm / tuned |" in table and "cpu_isa" in report["machine"]
