import json

from benchmarks.interleaved_settings import command_line, format_step_table, interleaved_training_steps


def test_settings_alternate_step_by_step_after_a_warm_up_and_are_tabled():
    selected = []
    report = interleaved_training_steps(selected.append, ("native", "torch"), size="tiny", frames=64, rounds=2)
    assert selected == ["native", "torch", "native"] + ["native", "torch"] * 2
    assert [len(times) for times in report["seconds"].values()] == [2, 2]
    assert report["best"]["torch"] == min(report["seconds"]["torch"])
    table = format_step_table(report, {"native": "kernels", "torch": "torch forced"})
    assert table[2].startswith("| kernels |") and table[-1].startswith("| torch / native |")


def test_the_command_line_passes_its_options_to_run_and_saves_the_report(tmp_path, capsys):
    calls = []

    def run(size, repeats, rounds):
        calls.append((size, repeats, rounds))
        return {"date": "today", "machine": {}, "value": 1}

    target = tmp_path / "report.json"
    command_line("doc", run, lambda report: "| table |", repeats=7, argv=["--size", "tiny", "--json", str(target)])
    assert calls == [("tiny", 7, 8)]  # --repeats defaults to the benchmark's own count, --rounds to 8
    assert json.loads(target.read_text())["value"] == 1 and "| table |" in capsys.readouterr().out
