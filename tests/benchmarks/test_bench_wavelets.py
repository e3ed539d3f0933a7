import pytest
import torch

from benchmarks import bench_wavelets
from benchmarks.bench_wavelets import format_table, run
from mnemodyn_hf import wavelets
from mnemodyn_hf.native_kernels import kernel_status

native = pytest.mark.skipif(not kernel_status().available, reason="no native kernel on this machine")


@native
def test_each_label_runs_its_own_path(monkeypatch):
    applies, calls = wavelets._native_applies, []
    monkeypatch.setattr(wavelets, "_run_native", lambda entry, *a: calls.append(entry))
    try:
        for path, expected in (("tensor", []), ("native", ["mnemodyn_dwt"])):
            calls.clear()
            bench_wavelets._select(path, applies)
            wavelets.dwt(torch.randn(3, 16), wavelets.analysis_filter_bank("db2"))  # the stub leaves the bands unset
            assert calls == expected, path
    finally:
        wavelets._native_applies = applies


@native
def test_both_paths_are_timed_side_by_side_and_the_native_path_is_restored():
    applies = wavelets._native_applies
    report = run(size="tiny", repeats=1, rounds=1)
    assert [(row["transform"], row["length"]) for row in report["transforms"]][:4] == [
        ("dwt forward", 64),
        ("dwt forward + backward", 64),
        ("idwt forward", 64),
        ("idwt forward + backward", 64),
    ]
    assert all(row["seconds"]["native"] > 0 and row["seconds"]["tensor"] > 0 for row in report["transforms"])
    assert set(report["step"]["best"]) == {"native", "tensor"}
    assert wavelets._native_applies is applies  # forcing the tensor path for the comparison does not outlive it
    table = format_table(report)
    assert "| idwt forward | 32 |" in table and "| tensor / native |" in table and "cpu_isa" in report["machine"]
