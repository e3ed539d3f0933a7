import pytest

from benchmarks import bench_page_size
from benchmarks.bench_backbone import run_worker
from benchmarks.machine import TORCH_HUGE_PAGES_VARIABLE

SMALL, HUGE = bench_page_size.SETTINGS


def _worker(setting: str, implementation: str, steps: list[float], huge: int = 0, mode: str = "train_step") -> dict:
    return {
        "mode": mode,
        "setting": setting,
        "implementation": implementation,
        "seconds_all": steps,
        "huge_page_bytes": huge,
    }


def test_each_setting_keeps_its_best_step_over_its_processes_and_the_ratio_of_the_bests():
    workers = [
        _worker(SMALL, "literal_reference_port", [2.6, 2.4]),
        _worker(SMALL, "mnemodyn", [0.42, 0.40]),
        _worker(HUGE, "literal_reference_port", [2.0, 1.9], huge=2 << 30),
        _worker(HUGE, "mnemodyn", [0.41, 0.39], huge=2 << 30),
        _worker(SMALL, "literal_reference_port", [2.3, 2.8]),  # a second process of the same setting
        _worker(SMALL, "mnemodyn", [0.44, 0.43]),
        _worker(SMALL, "mnemodyn", [0.1], mode="forward"),  # another mode is summarised apart
    ]
    summary = bench_page_size.summarize(workers)
    port = summary["train_step"][SMALL]["implementations"]["literal_reference_port"]
    assert (port["best_seconds"], port["median_seconds"], port["processes"]) == (2.3, 2.5, 2)
    assert summary["train_step"][SMALL]["port_over_mnemodyn"] == pytest.approx(2.3 / 0.40)
    assert summary["train_step"][HUGE]["port_over_mnemodyn"] == pytest.approx(1.9 / 0.39)
    assert summary["train_step"][HUGE]["implementations"]["mnemodyn"]["huge_page_bytes"] == 2 << 30
    assert summary["forward"][SMALL] == {
        "implementations": {
            "mnemodyn": {"best_seconds": 0.1, "median_seconds": 0.1, "huge_page_bytes": 0, "processes": 1}
        },
        "port_over_mnemodyn": None,
    }
    lines = bench_page_size.format_table({"summary": summary}).splitlines()
    assert lines[3] == "| train_step | 4 KiB pages | mnemodyn | 0.400 | 0.425 | 0 | 5.75x |"
    assert lines[5] == "| train_step | transparent huge pages | mnemodyn | 0.390 | 0.400 | 2048 | 4.87x |"
    assert lines[6] == "| forward | 4 KiB pages | mnemodyn | 0.100 | 0.100 | 0 |  |"


def test_a_setting_reaches_its_worker_process(monkeypatch):
    monkeypatch.setenv(TORCH_HUGE_PAGES_VARIABLE, "1")  # inherited, and overridden by the 4 KiB setting
    result = run_worker("mnemodyn", "train_step", "tiny", 1, 64, 1, environment=bench_page_size.SETTINGS[SMALL])
    assert result["torch_huge_page_allocations"] == "0"
    assert isinstance(result["huge_page_bytes"], int) and len(result["seconds_all"]) == 1
