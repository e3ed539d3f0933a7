import numpy as np
import pytest

from mnemodyn_hf.data import load_abide_pcp, resample_runs
from mnemodyn_hf.preprocessing.temporal_resampling import resample_frames, resampled_length


def test_every_run_reaches_one_tr_and_keeps_its_other_columns(shared_data):
    runs = load_abide_pcp(shared_data / "abide_dev", sites=("OLIN", "SBL"))  # TR 1.5 s and 2.2 s
    resampled = resample_runs(runs, 2.0)
    assert set(resampled["tr"]) == {2.0} and resampled["dx"] == runs["dx"] and resampled["subject"] == runs["subject"]
    for before, after in zip(
        runs.with_format("numpy").select([0, len(runs) - 1]), resampled.with_format("numpy").select([0, len(runs) - 1])
    ):
        assert len(after["bold"]) == resampled_length(len(before["bold"]), float(before["tr"]), 2.0)
        np.testing.assert_allclose(after["bold"], resample_frames(before["bold"], float(before["tr"]), 2.0), atol=1e-5)


def test_a_run_without_tr_is_named(shared_data):
    runs = load_abide_pcp(shared_data / "abide_dev", sites=("OLIN",)).map(lambda row: {"tr": None})
    with pytest.raises(ValueError, match=r"36 run\(s\) have no TR \(subjects \['Olin_"):
        resample_runs(runs, 2.0)
