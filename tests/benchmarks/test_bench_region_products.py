import pytest

from benchmarks.bench_region_products import format_table, run
from mnemodyn_hf import region_products
from mnemodyn_hf.native_kernels import kernel_status


@pytest.mark.skipif(not kernel_status().available, reason="no native kernel on this machine")
def test_products_and_steps_are_timed_side_by_side_and_the_tuned_choices_are_restored():
    applies = region_products._kernel_applies
    report = run(size="tiny", repeats=1, rounds=1)
    assert [(row["product"], row["rows"]) for row in report["products"]] == [
        (kind, rows) for kind in ("forward", "input_gradient", "weight_gradient") for rows in (4, 8)
    ]
    assert all(set(row["seconds"]) == {"torch", "native"} for row in report["products"])
    assert set(report["step"]["best"]) == {"tuned", "torch"} and report["step"]["best"]["torch"] > 0
    assert region_products._kernel_applies is applies  # forcing torch for the comparison does not outlive it
    table = format_table(report)
    assert "| input gradient | 4 |" in table and "| torch / tuned |" in table and "cpu_isa" in report["machine"]
