"""A cohort streams from disk through a DataLoader with bounded memory (scaled-down benchmarks/ measurement).

The full-size run (5,000 x 490 x 450 float32, 4.2 GiB) is `benchmarks/bench_cohort_streaming.py`; its numbers are
in docs/benchmarks.md. Here 400 sequences (336 MiB) are enough to tell streaming from holding the data in RAM.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """The benchmark module, importable by name (also in the spawned process that does the streaming)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_cohort_streaming")


def test_a_cohort_streams_from_disk_with_bounded_memory(bench, tmp_path):
    files = bench.write_synthetic_cohort(tmp_path / "cohort", sequences=400, frames=490, rois=450)
    try:
        streamed = bench.stream_in_fresh_process(files, batch_size=16, num_workers=0)
        in_ram = bench.stream_in_fresh_process(files, batch_size=16, num_workers=0, in_memory=True)
    finally:
        shutil.rmtree(tmp_path / "cohort")  # 336 MiB that pytest would otherwise keep for three runs

    assert streamed.sequences == in_ram.sequences == 400
    assert streamed.checksum == pytest.approx(in_ram.checksum)  # both saw the same data
    assert streamed.dataset_mib == pytest.approx(400 * 490 * 450 * 4 / 2**20)
    # Memory-mapped: anonymous memory grows by about a few batches, far below the 336 MiB of data
    # (measured: 60-70 MiB at 300-5,000 sequences, see docs/benchmarks.md) ...
    assert streamed.peak_anonymous_growth_mib < streamed.dataset_mib / 3
    # ... while the same measurement sees the whole dataset when it is loaded into RAM.
    assert in_ram.peak_anonymous_growth_mib > streamed.dataset_mib
