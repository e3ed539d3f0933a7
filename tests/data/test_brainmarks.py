"""Brainmarks cohorts (save_to_disk folders, `sub`, float16 z-scored `bold`, `mean`/`std`) load unchanged."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from mnemodyn_hf.data import check_cohort_features, load_brainmarks_cohort, subject_split, window_runs


def _brainmarks_split(subjects: list[str], rois: int = 6, seed: int = 0) -> datasets.Dataset:
    """A split with the features Brainmarks' ABIDE builder writes."""
    rng = np.random.default_rng(seed)
    features = datasets.Features(
        {
            "sub": datasets.Value("string"),
            "site": datasets.Value("string"),
            "dataset": datasets.Value("string"),
            "path": datasets.Value("string"),
            "n_frames": datasets.Value("int32"),
            "tr": datasets.Value("float32"),
            "bold": datasets.Array2D(shape=(None, rois), dtype="float16"),
            "mean": datasets.Array2D(shape=(1, rois), dtype="float32"),
            "std": datasets.Array2D(shape=(1, rois), dtype="float32"),
        }
    )
    rows = [
        {
            "sub": sub,
            "site": "NYU",
            "dataset": "NYU_1",
            "path": f"NYU_1/sub-{sub}/func/bold.nii.gz",
            "n_frames": 12,
            "tr": 2.0,
            "bold": rng.standard_normal((12, rois)).astype(np.float16),
            "mean": rng.standard_normal((1, rois)).astype(np.float32),
            "std": rng.uniform(1, 2, (1, rois)).astype(np.float32),
        }
        for sub in subjects
    ]
    return datasets.Dataset.from_list(rows, features=features)


def test_a_brainmarks_cohort_loads_unchanged(tmp_path):
    source = datasets.DatasetDict(
        train=_brainmarks_split(["0050642", "0050643", "0050644"]),
        validation=_brainmarks_split(["0050700"], seed=1),
        test=_brainmarks_split(["0050800", "0050801"], seed=2),
    )
    source.save_to_disk(tmp_path / "abide.schaefer400.arrow")

    cohort = load_brainmarks_cohort(tmp_path / "abide.schaefer400.arrow")

    assert list(cohort) == ["train", "validation", "test"]
    train = cohort["train"]
    assert check_cohort_features(train.features) == 6
    assert train["subject"] == ["0050642", "0050643", "0050644"]
    assert train["site"] == ["NYU"] * 3 and train["session"] == [""] * 3 and train["run"] == [""] * 3
    assert train.features["bold"].dtype == "float16"  # stored as written: nothing is rewritten
    original = source["train"].with_format("numpy")[0]
    row = train.with_format("numpy")[0]
    np.testing.assert_array_equal(row["bold"], original["bold"])
    np.testing.assert_array_equal(
        row["bold"] * row["std"] + row["mean"], original["bold"] * original["std"] + original["mean"]
    )
    assert all(f["filename"].startswith(str(tmp_path)) for f in train.cache_files)  # memory-mapped from the folder
    # and it flows through the rest of the data path
    assert len(window_runs(train, 4)) == 9
    assert set(subject_split(train, {"a": 0.5, "b": 0.5})) == {"a", "b"}


def test_a_leaking_brainmarks_cohort_is_refused(tmp_path):
    datasets.DatasetDict(train=_brainmarks_split(["1", "2"]), test=_brainmarks_split(["2", "3"])).save_to_disk(
        tmp_path / "leaky.arrow"
    )
    with pytest.raises(ValueError, match=r"'2' in train, test"):
        load_brainmarks_cohort(tmp_path / "leaky.arrow")
