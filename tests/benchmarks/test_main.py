import json

import pytest

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
    assert {r["implementation"] for r in backbone["results"]} == {
        "literal_reference_port",
        "mnemodyn_eager",
        "mnemodyn",
    }
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


def test_the_gpu_path_runs_on_cpu_in_bf16_and_renders_its_section(tmp_path):
    """`python -m benchmarks --device cuda` is the same code as this run but for the device: bf16 autocast for the
    backbone beside the literal port, and the pretraining loop beside the bare step."""
    quick = ["--quick", "--results", str(tmp_path), "--docs", str(tmp_path)]
    main([*quick, "--precision", "bf16", "--only", "backbone", "pretraining_loop"])
    backbone = json.loads((tmp_path / "backbone.json").read_text())["runs"][0]
    assert {r["precision"] for r in backbone["results"]} == {"bf16"}
    assert all(r["sequences_per_second"] > 0 for r in backbone["results"])
    loop = json.loads((tmp_path / "pretraining_loop.json").read_text())
    assert loop["precision"] == "bf16" and loop["bare_windows_per_second"] > 0
    assert loop["loop_windows_per_second"] is None or loop["loop_windows_per_second"] > 0  # None: unmeasurable
    # a GPU run's files carry a _cuda suffix; the page renders them in their own section
    for name in ("backbone", "pretraining_loop"):
        (tmp_path / f"{name}_cuda.json").write_text((tmp_path / f"{name}.json").read_text())
    main([*quick, "--only", "cp"])
    gpu = (tmp_path / "benchmarks.md").read_text().split("## GPU: backbone and pretraining loop")[1]
    assert "tiny size, batch 2, 64 frames, bf16" in gpu and "Loop overhead" in gpu


def test_cpu_studies_are_refused_on_cuda(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--device", "cuda", "--only", "scaling", "--results", str(tmp_path)])
    assert "CPU studies" in capsys.readouterr().err
