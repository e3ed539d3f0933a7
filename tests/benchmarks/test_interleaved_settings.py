from benchmarks.interleaved_settings import format_step_table, interleaved_training_steps


def test_settings_alternate_step_by_step_after_a_warm_up_and_are_tabled():
    selected = []
    report = interleaved_training_steps(selected.append, ("native", "torch"), size="tiny", frames=64, rounds=2)
    assert selected == ["native", "torch", "native"] + ["native", "torch"] * 2
    assert [len(times) for times in report["seconds"].values()] == [2, 2]
    assert report["best"]["torch"] == min(report["seconds"]["torch"])
    table = format_step_table(report, {"native": "kernels", "torch": "torch forced"})
    assert table[2].startswith("| kernels |") and table[-1].startswith("| torch / native |")
