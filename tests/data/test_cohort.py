"""load_cohort: BIDS-like folders and tables into the cohort schema, the cache, failing files, splits."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import datasets
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

import mnemodyn_hf
from mnemodyn_hf.data import CohortFileError, check_cohort_features, load_cohort
from mnemodyn_hf.data import cohort as cohort_module


def test_bids_cohort_of_roi_tables_loads_into_the_schema(toy_bids, tmp_path):
    root, written = toy_bids.root, toy_bids.written
    cohort = load_cohort(root, cache_dir=tmp_path / "cache")

    assert check_cohort_features(cohort.features) == 94 and "denoise" not in cohort.column_names
    assert cohort.features["bold"] == datasets.Array2D((None, 94), "float32")
    assert cohort.features["age"] == datasets.Value("int64")
    assert cohort.features["sex"] == datasets.Value("string")
    assert len(cohort) == len(written) == 12  # 6 sessions x 2 runs
    rows = cohort.with_format("numpy")
    for row in rows:
        relative = str(Path(row["path"]).relative_to(root.resolve()))
        np.testing.assert_array_equal(row["bold"], written[relative])  # .npy and %.9g .tsv are exact in float32
        sex, age, site, sessions = toy_bids.subjects[row["subject"]]
        assert (row["sex"], row["age"], row["site"]) == (sex, age, site)
        assert row["session"] in sessions and row["run"] in ("1", "2") and row["task"] == "rest"
        assert row["bold"].shape == (toy_bids.frames, 94)
        assert row["tr"] == pytest.approx(toy_bids.tr)


class _CountingReads:
    """Wraps `read_roi_table`, appending one line per call to a file (visible across worker processes)."""

    def __init__(self, log: Path):
        self.log, self.read = log, cohort_module.read_roi_table

    def __call__(self, path):
        with open(self.log, "a") as handle:
            handle.write(f"{os.getpid()} {path}\n")
        return self.read(path)

    def count(self) -> int:
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


@pytest.mark.parametrize("num_proc", [None, 2])
def test_second_load_reads_no_file_and_reuses_the_cache(toy_bids, tmp_path, monkeypatch, num_proc):
    root, written = toy_bids.root, toy_bids.written
    reads = _CountingReads(tmp_path / "reads.log")
    monkeypatch.setattr(cohort_module, "read_roi_table", reads)
    cache = tmp_path / "cache"

    first = load_cohort(root, cache_dir=cache, num_proc=num_proc)
    first_reads = reads.count()
    cache_files = sorted(f["filename"] for f in first.cache_files)
    stamps = {f: os.stat(f).st_mtime_ns for f in cache_files}
    second = load_cohort(root, cache_dir=cache, num_proc=num_proc)

    assert first_reads == len(written) + 1  # every run once, plus the first one to learn R
    assert reads.count() == first_reads  # the second load read no file
    assert sorted(f["filename"] for f in second.cache_files) == cache_files
    assert {f: os.stat(f).st_mtime_ns for f in cache_files} == stamps  # and rewrote nothing
    assert all(Path(f).is_relative_to(cache) for f in cache_files)
    assert second["path"] == first["path"]

    # Rewriting a file invalidates the cache.
    np.save(root / next(name for name in written if name.endswith(".npy")), np.zeros((toy_bids.frames, 94), np.float32))
    load_cohort(root, cache_dir=cache, num_proc=num_proc)
    assert reads.count() == first_reads + len(written) + 1


def test_a_corrupt_file_is_named_and_raised_or_skipped(toy_bids, tmp_path):
    root, written = toy_bids.root, toy_bids.written
    corrupt = root / sorted(written)[3]
    corrupt.write_bytes(b"not a ROI table at all")

    with pytest.raises(CohortFileError, match=corrupt.name):
        load_cohort(root, cache_dir=tmp_path / "cache")

    with pytest.warns(UserWarning, match=r"Skipped 1 of 12 runs") as caught:
        cohort = load_cohort(root, cache_dir=tmp_path / "cache", on_error="skip")
    message = next(str(w.message) for w in caught if str(w.message).startswith("Skipped"))
    assert str(corrupt.resolve()) in message and "Error" in message  # the file and the reason
    assert len(cohort) == 11 and str(corrupt.resolve()) not in cohort["path"]

    # Served from the cache, the skipped file is still reported.
    with pytest.warns(UserWarning, match=corrupt.name):
        load_cohort(root, cache_dir=tmp_path / "cache", on_error="skip")


def test_a_cohort_without_any_readable_file_lists_them_all(tmp_path):
    for name in ("a.npy", "b.csv"):
        (tmp_path / name).write_text("x,y\n")
    table = pd.DataFrame({"path": ["a.npy", "b.csv"], "subject": ["1", "2"], "tr": [2.0, 2.0]})
    table.to_csv(tmp_path / "cohort.csv", index=False)
    with pytest.raises(ValueError, match=r"No file of the cohort could be read:\n.*a\.npy.*\n.*b\.csv"):
        load_cohort(tmp_path / "cohort.csv", cache_dir=tmp_path / "cache", on_error="skip")


def test_a_file_with_another_roi_count_is_reported(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((10, 5), np.float32))
    np.save(tmp_path / "b.npy", np.ones((10, 6), np.float32))
    table = pd.DataFrame({"path": ["a.npy", "b.npy"], "subject": ["1", "2"], "tr": [2.0, 2.0]})
    table.to_csv(tmp_path / "cohort.csv", index=False)
    with pytest.raises(CohortFileError, match=r"b\.npy.*has 6 ROIs, the cohort has 5"):
        load_cohort(tmp_path / "cohort.csv", cache_dir=tmp_path / "cache")


def _write_runs(folder: Path, subjects: list[str]) -> list[str]:
    rng = np.random.default_rng(0)
    names = []
    for index in range(len(subjects)):
        name = f"run{index}.{'csv' if index % 2 else 'npy'}"
        bold = rng.standard_normal((20 + index, 4)).astype(np.float32)
        np.save(folder / name, bold) if name.endswith(".npy") else np.savetxt(folder / name, bold, delimiter=",")
        names.append(name)
    return names


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_a_table_with_a_file_column_and_typed_labels(tmp_path, suffix):
    subjects = ["s1", "s1", "s2", "s3", "s4", "s4"]
    table = pd.DataFrame(
        {
            "file": _write_runs(tmp_path, subjects),  # relative to the table's folder
            "subject": subjects,
            "session": ["a", "b", "a", "a", "a", "a"],
            "tr": [2.0, 2.0, 0.8, 0.8, 0.8, 0.8],
            "patient": [True, True, False, True, False, False],
            "score": [1.5, 1.5, np.nan, 3.0, 4.0, 4.0],
            "visits": [3, 3, 1, 2, 5, 5],
            "note": ["x", "x", "y", "z", "w", "w"],
        }
    )
    path = tmp_path / f"cohort{suffix}"
    if suffix == ".parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)

    cohort = load_cohort(
        path, file_column="file", label_columns=["patient", "score", "visits"], cache_dir=tmp_path / "cache"
    )

    assert cohort.column_names == [
        "bold",
        "tr",
        "subject",
        "session",
        "run",
        "site",
        "path",
        "patient",
        "score",
        "visits",
    ]
    assert cohort.features["patient"] == datasets.Value("bool")
    assert cohort.features["score"] == datasets.Value("float64")
    assert cohort.features["visits"] == datasets.Value("int64")
    assert cohort["score"][2] is None and cohort["session"] == list(table["session"])
    assert cohort["tr"] == pytest.approx(list(table["tr"]))
    assert [len(bold) for bold in cohort["bold"]] == [20 + index for index in range(6)]


def test_missing_repetition_time_teaches_the_three_ways_to_give_it(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((10, 5), np.float32))
    table = pd.DataFrame({"path": [str(tmp_path / "a.npy")], "subject": ["1"]})
    with pytest.raises(CohortFileError, match=r"a\.npy.*`tr` column.*RepetitionTime.*repetition_time="):
        load_cohort(table, cache_dir=tmp_path / "cache")
    cohort = load_cohort(table, repetition_time=1.5, cache_dir=tmp_path / "cache")
    assert cohort["tr"] == [1.5]


def test_split_fractions_and_split_column_give_leak_free_splits(toy_bids, tmp_path):
    root = toy_bids.root
    splits = load_cohort(
        root, cache_dir=tmp_path / "cache", split={"train": 0.5, "test": 0.5}, stratify_by="sex", seed=3
    )
    assert set(splits) == {"train", "test"} and sum(map(len, splits.values())) == 12
    assert not set(splits["train"]["subject"]) & set(splits["test"]["subject"])
    for split in splits.values():  # 2 F and 2 M subjects: one of each per split
        by_subject = dict(zip(split["subject"], split["sex"]))
        assert sorted(by_subject.values()) == ["F", "M"]

    files = sorted(Path(p) for p in load_cohort(root, cache_dir=tmp_path / "cache")["path"])
    table = pd.DataFrame({"path": files, "subject": [f.name.split("_")[0] for f in files], "tr": 0.72})
    table["split"] = np.where(table["subject"].isin(["sub-101309", "sub-102311"]), "train", "test")
    by_column = load_cohort(table, cache_dir=tmp_path / "cache")
    assert {name: len(split) for name, split in by_column.items()} == {"train": 6, "test": 6}
    assert "split" not in by_column["train"].column_names

    table.loc[0, "split"] = "test"  # one run of sub-101309 moves to test: a leak
    with pytest.raises(ValueError, match="sub-101309"):
        load_cohort(table, cache_dir=tmp_path / "cache")


class _NiftiRoiReader:
    """A stand-in with the feature extractor's call signature: reads a (R, 1, 1, T) NIfTI whose voxels are ROIs
    and returns `input_values` (1, T, R) and `attention_mask` (1, T)."""

    def __init__(self, log: Path):
        self.log = log

    def __call__(self, path, return_tensors="np"):
        with open(self.log, "a") as handle:
            handle.write(f"{path}\n")
        image = nib.load(path)
        values = np.asarray(image.dataobj, dtype=np.float32).reshape(image.shape[0], -1).T
        return {"input_values": values[None], "attention_mask": np.ones((1, len(values)), np.int64)}


def test_images_go_through_the_feature_extractor_inside_the_map(toy_bids, tmp_path):
    root, written = toy_bids.root, toy_bids.written
    images, expected = tmp_path / "images", {}
    for relative, bold in written.items():
        stem = relative.rsplit("_", 1)[0]
        path = images / f"{stem}_bold.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.Nifti1Image(bold.T.reshape(94, 1, 1, -1), np.eye(4)).to_filename(path)
        path.with_name(f"{path.name.split('.')[0]}.json").write_text(json.dumps({"RepetitionTime": toy_bids.tr}))
        expected[str(path.resolve())] = bold
    (images / "participants.tsv").write_bytes((root / "participants.tsv").read_bytes())
    log = tmp_path / "calls.log"

    with pytest.raises(CohortFileError, match="pass feature_extractor="):
        load_cohort(images, cache_dir=tmp_path / "cache")
    cohort = load_cohort(images, feature_extractor=_NiftiRoiReader(log), cache_dir=tmp_path / "cache", num_proc=2)
    calls = len(log.read_text().splitlines())
    again = load_cohort(images, feature_extractor=_NiftiRoiReader(log), cache_dir=tmp_path / "cache", num_proc=2)

    assert calls == len(written) + 1  # every run in the workers, plus one to learn R
    assert len(log.read_text().splitlines()) == calls  # the second load called nothing
    assert len(again) == len(cohort) == len(written)
    for row in cohort.with_format("numpy"):
        np.testing.assert_array_equal(row["bold"], expected[row["path"]])
        assert row["tr"] == pytest.approx(toy_bids.tr)


def test_bids_cohort_of_real_images_through_mnemodyn_feature_extractor(tmp_path, brainspace_image_runs):
    """The image variant of the BIDS test: real brainspace-derived runs (fsLR dtseries and MNI NIfTI), laid out
    as subjects x 2 runs, parcellated by the real feature extractor inside the map, then served from the cache."""
    root = tmp_path / "bids"
    root.mkdir()
    pd.DataFrame({"participant_id": ["sub-1", "sub-2", "sub-3"], "group": ["a", "b", "a"]}).to_csv(
        root / "participants.tsv", sep="\t", index=False
    )
    for index, source in enumerate(brainspace_image_runs[:6]):
        func = root / f"sub-{index // 2 + 1}" / "func"
        func.mkdir(parents=True, exist_ok=True)
        name = str(source)
        extension = next(ext for ext in (".dtseries.nii", ".nii.gz", ".nii") if name.endswith(ext))
        (func / f"sub-{index // 2 + 1}_task-rest_run-{index % 2 + 1}_bold{extension}").symlink_to(source)
    extractor = _CountingExtractor(do_normalize=False)  # cohorts keep raw parcel means
    extractor.log = str(tmp_path / "calls.log")
    cohort = load_cohort(root, feature_extractor=extractor, cache_dir=tmp_path / "cache")
    calls = len(Path(extractor.log).read_text().splitlines())
    assert check_cohort_features(cohort.features) == 450
    assert len(cohort) == min(6, len(brainspace_image_runs))
    assert calls == len(cohort) + 1  # every run, plus one to learn R
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = load_cohort(root, feature_extractor=extractor, cache_dir=tmp_path / "cache")
    assert len(again) == len(cohort)
    assert len(Path(extractor.log).read_text().splitlines()) == calls  # measured: the second load parcellated nothing
    direct = extractor(str(brainspace_image_runs[0]), return_tensors="np")["input_values"][0]
    source = str(Path(brainspace_image_runs[0]).resolve())  # the manifest stores resolved paths (symlink targets)
    first = next(row for row in cohort.with_format("numpy") if row["path"] == source)
    np.testing.assert_allclose(first["bold"], direct, atol=1e-6)  # the cached rows are the extractor's output


class _CountingExtractor(mnemodyn_hf.MnemoDynFeatureExtractor):
    """The real feature extractor, logging each call to a file (the cohort calls it in worker processes)."""

    log = ""

    def __call__(self, *args, **kwargs):
        with open(self.log, "a") as handle:
            handle.write("call\n")
        return super().__call__(*args, **kwargs)


# ---------------------------------------------------------------- fMRIPrep derivatives

DENOISE = {"denoise_strategy": "simple", "motion": "basic"}


def test_an_fmriprep_derivatives_folder_loads_denoised_in_one_space(fmriprep_derivatives, tmp_path):
    from mnemodyn_hf import MnemoDynFeatureExtractor

    extractor = MnemoDynFeatureExtractor(denoise=DENOISE, do_normalize=False)
    cohort = load_cohort(fmriprep_derivatives, space="fsLR", feature_extractor=extractor, cache_dir=tmp_path)
    assert list(cohort["subject"]) == ["01", "02"] and set(cohort["task"]) == {"rest"}
    assert [Path(path).name for path in cohort["path"]] == [
        f"sub-{s}_task-rest_space-fsLR_den-91k_bold.dtseries.nii" for s in ("01", "02")
    ]
    assert [json.loads(record) for record in cohort["denoise"]] == [DENOISE, DENOISE]
    for row in cohort.with_format("numpy"):
        expected = extractor(row["path"])["input_values"][0]
        np.testing.assert_allclose(row["bold"], expected, rtol=1e-6)
        assert row["tr"] == pytest.approx(0.735)


def test_derivatives_need_a_space_when_they_hold_several(fmriprep_derivatives, tmp_path):
    from mnemodyn_hf.data.manifest import derivatives_manifest

    with pytest.raises(ValueError, match=r"template spaces \['MNI152NLin6Asym', 'fsLR'\]; pass space=... \(--space\)"):
        load_cohort(fmriprep_derivatives, cache_dir=tmp_path)
    with pytest.raises(
        FileNotFoundError, match=r"no run in space 'T1w'; its runs are in \['MNI152NLin6Asym', 'fsLR'\]"
    ):
        derivatives_manifest(fmriprep_derivatives, space="T1w")
    volumes = derivatives_manifest(fmriprep_derivatives, space="MNI152NLin6Asym")
    assert all(path.endswith("_desc-preproc_bold.nii.gz") for path in volumes["path"]) and len(volumes) == 2


def test_a_derivatives_run_without_its_confounds_is_named_with_the_fix(fmriprep_derivatives, tmp_path):
    from mnemodyn_hf import MnemoDynFeatureExtractor

    root = tmp_path / "derivatives"  # the CIFTI runs, sub-02 without its confounds (copies: paths are resolved)
    for path in fmriprep_derivatives.rglob("*"):
        if (
            path.is_file()
            and "MNI" not in path.name
            and not (path.name.startswith("sub-02") and "confounds" in path.name)
        ):
            (root / path.relative_to(fmriprep_derivatives)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / path.relative_to(fmriprep_derivatives))
    extractor = MnemoDynFeatureExtractor(denoise=DENOISE, do_normalize=False)
    with pytest.raises(CohortFileError, match=r"sub-02.*none were found beside it.*pass confounds=<the run's"):
        load_cohort(root, space="fsLR", feature_extractor=extractor, cache_dir=tmp_path / "cache")
