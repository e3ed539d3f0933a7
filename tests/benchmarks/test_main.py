import json

from benchmarks import BENCHMARK_NAMES
from benchmarks.__main__ import main


def test_quick_benchmarks_write_json_tables_and_plot(tmp_path):
    """The benchmark suite itself runs end to end at tiny sizes (speed is not asserted)."""
    (tmp_path / "benchmarks.md").write_text("# Benchmarks\n\n## Cohort streaming\n\nkept table\n")
    main(["--quick", "--results", str(tmp_path), "--docs", str(tmp_path)])
    for name in BENCHMARK_NAMES:
        report = json.loads((tmp_path / f"{name}.json").read_text())
        assert report["command"].startswith("python -m benchmarks --quick")
    backbone = json.loads((tmp_path / "backbone.json").read_text())["runs"][0]
    assert {r["implementation"] for r in backbone["results"]} == {"literal_reference_port", "mnemodyn"}
    assert set(backbone["ratios"]) == {"forward", "train_step"}
    scaling = json.loads((tmp_path / "scaling.json").read_text())
    assert [c["attention_how"] for c in scaling["comparison"]] == ["measured", "extrapolated"]
    extraction = json.loads((tmp_path / "feature_extraction.json").read_text())
    assert all(r["max_abs_diff_vs_feature_extractor"] < 1e-5 for r in extraction["results"])
    cp = json.loads((tmp_path / "cp.json").read_text())
    full, factored = cp["rows"]
    assert full["cp_rank"] is None and factored["operator_parameters"] < full["operator_parameters"]
    study = json.loads((tmp_path / "cp_pretraining.json").read_text())
    assert [r["cp_rank"] for r in study["rows"]] == [None, 2]
    assert all(-10 < r["r2_model"] < 1 for r in study["rows"])
    assert [r["cp_rank"] for r in study["compressed_rows"]] == [2]
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "## Backbone" in markdown and "## Scaling" in markdown and "## Feature extraction" in markdown
    assert "## CP low-rank operators" in markdown and "## CP rank and reconstruction quality" in markdown
    assert "### Compress, then fine-tune briefly" in markdown
    assert "## Cohort streaming\n\nkept table" in markdown  # sections of other scripts are carried over
    assert (tmp_path / "benchmarks_scaling.png").stat().st_size > 10_000
