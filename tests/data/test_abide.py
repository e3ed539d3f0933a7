"""ABIDE PCP loader: the real shared `abide_dev/` folder (skipped without it) and small synthetic folders."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from mnemodyn_hf.data import check_cohort_features, load_abide_pcp, shared_data_dir

#: The data README's TR (s) per site.
README_TR = {
    "KKI": 2.5,
    "LEUVEN_1": 1.656,
    "LEUVEN_2": 1.656,
    "MAX_MUN": 3.0,
    "OHSU": 2.5,
    "OLIN": 1.5,
    "PITT": 1.5,
    "SBL": 2.2,
    "UCLA_1": 3.0,
    "UCLA_2": 3.0,
}


@pytest.fixture(scope="module")
def abide_dir(shared_data) -> Path:
    folder = shared_data / "abide_dev"
    if not folder.is_dir():
        pytest.skip(f"no abide_dev/ in {shared_data}")
    return folder


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


@pytest.fixture(scope="module")
def abide_and_log(abide_dir, tmp_path_factory) -> tuple[datasets.Dataset, list[str]]:
    """The real cohort and what its loading logged."""
    records, logger = Records(), logging.getLogger("mnemodyn_hf.data.abide")
    logger.addHandler(records)
    try:
        return load_abide_pcp(abide_dir, cache_dir=tmp_path_factory.mktemp("abide")), records.messages
    finally:
        logger.removeHandler(records)


@pytest.fixture(scope="module")
def abide(abide_and_log) -> datasets.Dataset:
    return abide_and_log[0]


def test_real_cohort_counts_and_schema(abide):
    assert check_cohort_features(abide.features) == 200
    assert len(abide) == len(set(abide["subject"])) == 426
    assert len(set(abide["site"])) == 10
    assert Counter(abide["dx"]) == {1: 207, 0: 219}
    assert set(abide["session"]) == set(abide["run"]) == {""}
    types = {name: feature.dtype for name, feature in abide.features.items() if isinstance(feature, datasets.Value)}
    assert types["dx"] == types["n_zero_rois_cc200"] == "int64"
    assert types["age"] == types["func_mean_fd"] == types["func_perc_fd"] == types["fiq"] == "float32"
    assert types["sex"] == types["eye_status"] == types["handedness"] == "string" and types["in_pcp_1035"] == "bool"
    assert abide.features["zero_rois"] == datasets.List(datasets.Value("int32"))
    assert set(abide["sex"]) == {"M", "F"} and set(abide["eye_status"]) == {"open", "closed"}


def test_real_tr_per_site_matches_the_readme(abide):
    per_site = {site: set() for site in README_TR}
    for site, tr in zip(abide["site"], abide["tr"]):
        per_site[site].add(round(tr, 4))  # float32 -> the README's decimals
    assert per_site == {site: {tr} for site, tr in README_TR.items()}


def test_real_bold_is_the_float32_array(abide, abide_dir):
    rows = abide.with_format("numpy")
    lengths = [len(bold) for bold in rows["bold"]]
    assert min(lengths) == 78 and max(lengths) == 246 and np.median(lengths) == 152
    with np.load(abide_dir / "cc200_float16.npz") as arrays:
        for index in (0, 200, 425):
            row = rows[index]
            assert row["bold"].dtype == np.float32 and row["bold"].shape[1] == 200
            np.testing.assert_array_equal(row["bold"], arrays[str(row["subject"])].astype(np.float32))
            assert row["path"] == f"{abide_dir / 'cc200_float16.npz'}:{row['subject']}"


def test_real_zero_rois_agree_with_the_table_and_the_arrays(abide):
    assert [len(rois) for rois in abide["zero_rois"]] == abide["n_zero_rois_cc200"]
    with_zeros = {row["subject"]: row for row in abide.with_format("numpy") if len(row["zero_rois"])}
    assert len(with_zeros) == 6 and max(len(row["zero_rois"]) for row in with_zeros.values()) == 12
    for row in with_zeros.values():
        assert not row["bold"][:, row["zero_rois"]].any()
        assert np.delete(row["bold"], row["zero_rois"], axis=1).any(axis=0).all()


def test_real_missing_values_are_null_not_dropped(abide):
    assert sum(value is None for value in abide["fiq"]) == 66
    assert sum(value is None for value in abide["func_mean_fd"]) == 2
    assert sum(value is None for value in abide["handedness"]) == 30  # 29 blank + 1 ABIDE -9999
    assert Counter(abide["in_pcp_1035"]) == {True: 407, False: 19}


def test_real_zero_roi_summary_is_logged_once(abide_and_log):
    _, messages = abide_and_log
    assert messages == [
        "WARNING: 6 of 426 ABIDE runs have all-zero ROI columns (no coverage), at most 12 (Leuven_2_0050727); "
        "mask the ROIs listed in `zero_rois`."
    ]


def test_real_sites_subset(abide_dir, tmp_path):
    subset = load_abide_pcp(abide_dir, sites=["KKI", "PITT"], cache_dir=tmp_path)
    assert Counter(subset["site"]) == {"KKI": 55, "PITT": 57}
    assert Counter(load_abide_pcp(abide_dir, sites="OHSU", cache_dir=tmp_path)["site"]) == {"OHSU": 28}


def test_real_unknown_site_lists_the_available_ones(abide_dir):
    with pytest.raises(ValueError, match=r"Unknown ABIDE site\(s\) \['NYU'\].*available: \['KKI', 'LEUVEN_1'"):
        load_abide_pcp(abide_dir, sites=["KKI", "NYU"])


# --- synthetic folders -------------------------------------------------------------------------------------------


def write_abide(folder: Path, subjects: dict[str, np.ndarray]) -> Path:
    """A small ABIDE-like folder: the arrays of `subjects` (as float16) and a consistent phenotype row each."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "cc200_float16.npz", **{key: x.astype(np.float16) for key, x in subjects.items()})
    rows = [
        {
            "subject_id": key,
            "site": key.split("_")[0].upper(),
            "tr": 2.0,
            "dx": index % 2,
            "sex": "M",
            "age": 10.5,
            "n_timepoints": len(value),
            "func_mean_fd": 0.1,
            "func_perc_fd": 1.0,
            "n_zero_rois_cc200": int((value == 0).all(0).sum()),
            "in_pcp_1035": True,
            "eye_status": "open",
            "handedness": "R",
            "fiq": 100.0,
        }
        for index, (key, value) in enumerate(subjects.items())
    ]
    pd.DataFrame(rows).to_csv(folder / "phenotypes.csv", index=False)
    return folder


def toy_subjects(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    subjects = {
        f"{site}_{number:07d}": rng.normal(size=(20, 200)) for site, number in (("Kki", 1), ("Kki", 2), ("Pitt", 3))
    }
    subjects["Pitt_0000003"][:, [5, 17]] = 0
    return subjects


def test_synthetic_folder_loads_with_nulls(tmp_path):
    folder = write_abide(tmp_path / "abide", toy_subjects())
    table = pd.read_csv(folder / "phenotypes.csv")
    table.loc[0, ["fiq", "age", "handedness"]] = [-9999, np.nan, "-9999"]
    table.to_csv(folder / "phenotypes.csv", index=False)
    cohort = load_abide_pcp(folder, cache_dir=tmp_path / "cache")
    assert cohort["subject"] == ["Kki_0000001", "Kki_0000002", "Pitt_0000003"]
    assert cohort["fiq"][0] is None and cohort["age"][0] is None and cohort["handedness"][0] is None
    assert cohort["zero_rois"] == [[], [], [5, 17]] and cohort["tr"] == [2.0] * 3


def test_csv_row_without_array_is_named(tmp_path):
    subjects = toy_subjects()
    folder = write_abide(tmp_path, subjects)
    np.savez(folder / "cc200_float16.npz", **{key: value for key, value in subjects.items() if key != "Kki_0000002"})
    with pytest.raises(ValueError, match=r"1 subject\(s\) of .*phenotypes.csv have no array .*: Kki_0000002"):
        load_abide_pcp(folder)


def test_array_without_csv_row_is_named(tmp_path):
    folder = write_abide(tmp_path, toy_subjects())
    table = pd.read_csv(folder / "phenotypes.csv")
    table[table["subject_id"] != "Pitt_0000003"].to_csv(folder / "phenotypes.csv", index=False)
    with pytest.raises(ValueError, match=r"1 array\(s\) of .* have no row in .*: Pitt_0000003"):
        load_abide_pcp(folder, sites=["KKI"])


def test_zero_roi_count_mismatch_names_the_subject(tmp_path):
    folder = write_abide(tmp_path, toy_subjects())
    table = pd.read_csv(folder / "phenotypes.csv")
    table.loc[2, "n_zero_rois_cc200"] = 3
    table.to_csv(folder / "phenotypes.csv", index=False)
    with pytest.raises(ValueError, match=r"Pitt_0000003 has 2 all-zero ROI column\(s\) \[5, 17\].*says 3"):
        load_abide_pcp(folder)


@pytest.mark.parametrize("missing", ["cc200_float16.npz", "phenotypes.csv"])
def test_missing_file_names_the_layout(tmp_path, missing):
    folder = write_abide(tmp_path, toy_subjects())
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=rf"lacks \['{missing}'\]\. An ABIDE PCP folder holds"):
        load_abide_pcp(folder)


def test_shared_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MNEMODYN_SHARED_DATA", raising=False)
    assert shared_data_dir(tmp_path / "mine", "abide_dev") == tmp_path / "mine"
    with pytest.raises(ValueError, match=r"pass `--data PATH`.*MNEMODYN_SHARED_DATA=/path/to/shared/data"):
        shared_data_dir(None, "abide_dev")
    monkeypatch.setenv("MNEMODYN_SHARED_DATA", str(tmp_path))
    assert shared_data_dir(None, "rpn_signature") == tmp_path / "rpn_signature"
