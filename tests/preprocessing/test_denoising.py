"""Denoising with nilearn's fMRIPrep strategies: confounds beside the image or given, dropped frames, bad input."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pandas as pd
import pytest
from nilearn import signal
from nilearn.interfaces.fmriprep import load_confounds_strategy

from mnemodyn_hf import MnemoDynFeatureExtractor
from mnemodyn_hf.preprocessing.denoising import (
    DENOISE_STRATEGIES,
    FrameSelection,
    denoise_parcel_means,
    denoise_record,
    require_nilearn,
)
from mnemodyn_hf.preprocessing.temporal_resampling import resample_frames, resampled_length

TR = 1.4  # the real run's TR (tests/conftest.py)
#: nilearn's presets with fewer regressors: their defaults (24 motion parameters and more) regress everything but the
#: mean out of the 27-29 kept frames of the 30-row confounds files nilearn ships
SIMPLE = {"denoise_strategy": "simple", "motion": "basic"}
COMPCOR = {"denoise_strategy": "compcor", "motion": "basic", "n_compcor": 5}


def run_files(root, subject):
    """(CIFTI, NIfTI, confounds TSV) of one run of the derivatives folder."""
    func = root / f"sub-{subject}" / "func"
    stem = f"sub-{subject}_task-rest"
    confounds = next(func.glob(f"{stem}_desc-confounds_*.tsv"))
    return (
        func / f"{stem}_space-fsLR_den-91k_bold.dtseries.nii",
        func / f"{stem}_space-MNI152NLin6Asym_res-2_desc-preproc_bold.nii.gz",
        confounds,
    )


@pytest.fixture(scope="module")
def parcel_means(fmriprep_derivatives):
    """{subject: (T, 450) parcel means of its CIFTI run, not denoised}."""
    extractor = MnemoDynFeatureExtractor(do_resample=False, do_normalize=False)
    return {s: extractor.roi_series(run_files(fmriprep_derivatives, s)[0])[0] for s in ("01", "02")}


def test_records_are_nilearns_keyword_arguments():
    from nilearn.interfaces.fmriprep.load_confounds_strategy import preset_strategies

    assert set(DENOISE_STRATEGIES) == set(preset_strategies)
    assert denoise_record(None) is None
    assert denoise_record("simple") == {"denoise_strategy": "simple"}
    record = {"denoise_strategy": "scrubbing", "fd_threshold": 0.3}
    assert denoise_record(record) == record
    with pytest.raises(ValueError, match=r"names no strategy .* expected one of \('simple', 'scrubbing'"):
        denoise_record("aroma")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['fd'\]; load_confounds_strategy takes"):
        denoise_record({"denoise_strategy": "scrubbing", "fd": 0.3})


def test_confounds_beside_the_image_or_given_explicitly_clean_alike(fmriprep_derivatives, parcel_means):
    cifti, _, confounds_file = run_files(fmriprep_derivatives, "01")
    values = parcel_means["01"]
    results = {}
    for strategy, record in (("simple", SIMPLE), ("compcor", COMPCOR)):
        beside, frames = denoise_parcel_means(record, values, cifti, None, "run", TR)
        regressors, sample_mask = load_confounds_strategy(str(cifti), **record)
        expected = signal.clean(values, detrend=False, standardize=None, confounds=regressors, sample_mask=sample_mask)
        np.testing.assert_allclose(beside, expected, rtol=1e-10, atol=1e-10)
        assert frames == FrameSelection(30, tuple(range(3, 30)))  # 3 non-steady-state frames trimmed
        given, _ = denoise_parcel_means(record, values, None, confounds_file, "run", TR)  # its .json comes along
        np.testing.assert_allclose(given, beside, rtol=1e-12, atol=1e-12)
        results[strategy] = beside
    table = pd.read_csv(confounds_file, sep="\t")  # a DataFrame: the strategies that need no .json metadata
    given, _ = denoise_parcel_means(SIMPLE, values, None, table, "run", TR)
    np.testing.assert_allclose(given, results["simple"], rtol=1e-12, atol=1e-12)
    assert np.abs(given - values[3:]).max() > 0.01 * np.abs(values).max()  # the confounds did remove something
    assert np.abs(results["compcor"] - given).max() > 0.01 * np.abs(values).max()  # and the strategies differ


def test_a_strategy_that_leaves_only_the_mean_warns(fmriprep_derivatives, parcel_means):
    cifti = run_files(fmriprep_derivatives, "01")[0]
    with pytest.warns(UserWarning, match=r"regresses 27 confounds out of 27 kept frames, .* motion=basic"):
        series, _ = denoise_parcel_means(denoise_record("simple"), parcel_means["01"], cifti, None, "run", TR)
    np.testing.assert_allclose(series, np.broadcast_to(series.mean(axis=0), series.shape), atol=1e-9)


def test_scrubbed_frames_keep_their_time_through_resampling(fmriprep_derivatives, parcel_means):
    """Frames dropped inside the run are filled on the acquisition grid, so the run keeps its duration."""
    cifti = run_files(fmriprep_derivatives, "02")[0]
    values = parcel_means["02"]
    record = denoise_record(
        {"denoise_strategy": "scrubbing", "fd_threshold": 0.15, "motion": "basic", "wm_csf": "basic"}
    )
    series, frames = denoise_parcel_means(record, values, cifti, None, "run", TR)
    regressors, sample_mask = load_confounds_strategy(str(cifti), **record)
    assert list(frames.kept) == list(sample_mask)  # nilearn's sample mask, with gaps at 11-13 and 19
    assert frames.interpolated == [11, 12, 13, 19] and frames.trimmed == [0, 1, 28, 29]
    span = np.arange(frames.kept[0], frames.kept[-1] + 1)
    assert series.shape == (len(span), 450)
    cleaned = signal.clean(values, detrend=False, standardize=None, confounds=regressors, sample_mask=sample_mask)
    np.testing.assert_allclose(series[np.searchsorted(span, frames.kept)], cleaned, rtol=1e-10, atol=1e-10)
    # a filled frame lies within the range of the kept frames around its gap (cubic spline, no wild overshoot)
    assert np.all(np.abs(series[19 - span[0]]) <= 3 * np.abs(cleaned).max(axis=0) + 1e-12)
    # resampled, the run spans kept[0]..kept[-1] in real time: 25 acquired frames, not the 22 kept ones glued
    resampled = resample_frames(series, TR, 0.735)
    assert len(resampled) == resampled_length(len(span), TR, 0.735) > resampled_length(len(frames.kept), TR, 0.735)


def test_rows_other_than_frames_name_the_confounds_to_give(fmriprep_derivatives, parcel_means):
    _, _, confounds_file = run_files(fmriprep_derivatives, "01")
    table = pd.read_csv(confounds_file, sep="\t").iloc[:25]
    with pytest.raises(ValueError, match=r"has 30 frames but its confounds have 25 rows; .*desc-confounds_timeseries"):
        denoise_parcel_means(SIMPLE, parcel_means["01"], None, table, "run", TR)


def test_a_strategy_needing_absent_columns_names_what_to_do(fmriprep_derivatives, parcel_means):
    _, _, confounds_file = run_files(fmriprep_derivatives, "01")
    table = pd.read_csv(confounds_file, sep="\t").drop(columns=["csf", "white_matter"])
    with pytest.raises(
        ValueError, match=r"do not hold what denoise strategy 'simple' .*needs: .*csf.*Choose a strategy"
    ):
        denoise_parcel_means(SIMPLE, parcel_means["01"], None, table, "run", TR)
    with pytest.raises(ValueError, match=r"strategy 'compcor' needs: .*json.*compcor reads the component metadata"):
        denoise_parcel_means(denoise_record("compcor"), parcel_means["01"], None, table, "run", TR)


def test_a_strategy_that_scrubs_every_frame_is_refused(fmriprep_derivatives, parcel_means):
    cifti = run_files(fmriprep_derivatives, "01")[0]  # the real fMRIPrep 20.2 confounds: FD > 0.5 mm nearly always
    with pytest.raises(ValueError, match=r"'scrubbing' drops 30 of its 30 frames .* loosen the scrubbing"):
        denoise_parcel_means(denoise_record("scrubbing"), parcel_means["01"], cifti, None, "run", TR)


def test_an_image_without_its_confounds_names_where_they_belong(fmriprep_derivatives, parcel_means, tmp_path):
    cifti = run_files(fmriprep_derivatives, "01")[0]
    alone = shutil.copy(cifti, tmp_path / cifti.name)
    with pytest.raises(ValueError, match=r"needs the run's fMRIPrep confounds, and none were found beside it .*"):
        denoise_parcel_means(denoise_record("simple"), parcel_means["01"], alone, None, "run", TR)


def test_tables_without_confounds_are_taken_as_denoised(parcel_means):
    values = parcel_means["01"]
    series, frames = denoise_parcel_means(denoise_record("simple"), values, None, None, "table", TR)
    assert series is values and frames == FrameSelection.every_frame(30)


def test_without_nilearn_the_error_names_the_extra(monkeypatch):
    for name in [name for name in sys.modules if name == "nilearn" or name.startswith("nilearn.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'mnemodyn_hf\[denoise\]'"):
        require_nilearn()


def test_an_image_without_a_file_or_the_aroma_output_is_refused_with_the_fix(fmriprep_derivatives, parcel_means):
    values = parcel_means["01"]
    with pytest.raises(ValueError, match=r"an image without a file name, .* pass confounds=<the run's"):
        denoise_parcel_means(SIMPLE, values, None, None, "image", TR, is_image=True)
    cifti = run_files(fmriprep_derivatives, "01")[0]
    with pytest.raises(ValueError, match=r"'ica_aroma' reads fMRIPrep's ICA-AROMA output .*smoothAROMAnonaggr"):
        denoise_parcel_means(denoise_record("ica_aroma"), values, cifti, None, "run", TR)
