"""The linear read-out benchmark runs end to end on three ABIDE sites and finds the two implementations equal."""

from __future__ import annotations

from benchmarks import bench_linear_readout as bench


def test_before_and_after_agree_and_the_section_renders(shared_data, tmp_path):
    report = bench.run(
        shared_data / "abide_dev",
        sites=("OHSU", "OLIN", "SBL"),
        labels=("dx", "age"),
        groupings=("site",),
        methods=("pooled_input",),
        implementations=("before_1_thread", "after"),
    )
    assert report["folds"] == ["OHSU", "OLIN", "SBL"] and len(report["rows"]) == 6
    for entry in report["summary"]:
        assert entry["same_penalty_folds_vs_before_1_thread"] == entry["folds"] == 3
        assert entry["max_abs_score_diff_vs_before_1_thread"] < 1e-9
        assert entry["max_abs_metric_diff_vs_before_1_thread"] < 1e-9
    report["command"] = "python -m benchmarks.bench_linear_readout --sites OHSU OLIN SBL"
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\n## Cohort streaming\n\nkept table\n")
    for _ in range(2):  # the section is replaced, not appended again
        bench.write_section(page, bench.render_section(report))
    markdown = page.read_text()
    assert markdown.count("## Linear read-outs") == 1 and "## Cohort streaming\n\nkept table" in markdown
    assert "| dx | site | pooled_input |" in markdown and "| age | site | pooled_input |" in markdown
