"""The feature-extraction benchmark runs and measures what it claims, at a tiny size."""

from __future__ import annotations

import numpy as np

from benchmarks import bench_feature_extraction as bench


def test_benchmark_measures_time_memory_and_identical_outputs(tmp_path):
    paths = bench.build_data(tmp_path, frames=30, volume_frames=0)
    results = [bench.measure(method, paths, repeats=1) for method in ("parcel_averager", "feature_extractor")]
    assert results[0]["total_over_input"] >= 1  # given the array in memory: the input is counted
    for result in results:
        assert result["input_shape"] == [30, 91282] and result["input_bytes"] == 30 * 91282 * 4
        assert result["seconds"] > 0 and result["total_over_input"] > 0
    averaged, extracted = (np.load(result.pop("output")) for result in results)
    assert averaged.shape == extracted.shape == (30, 450)
    np.testing.assert_allclose(averaged, extracted, atol=1e-6)
    for result in results:
        result["max_abs_diff_vs_feature_extractor"] = 0.0
    table = bench.format_table({"results": results})
    assert "ParcelAverager" in table and "30 x 91282" in table


def test_series_are_extended_by_playing_them_back_and_forth():
    assert bench.back_and_forth(4, 11).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert bench.back_and_forth(1, 3).tolist() == [0, 0, 0]
