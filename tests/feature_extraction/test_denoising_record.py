"""The extractor's denoising record: saved in preprocessor_config.json, reloaded, applied at fit and call time."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from nilearn import signal
from nilearn.interfaces.fmriprep import load_confounds_strategy
from transformers import AutoFeatureExtractor

from mnemodyn_hf import MnemoDynFeatureExtractor
from mnemodyn_hf.preprocessing.robust_scaling import robust_scale
from mnemodyn_hf.preprocessing.temporal_resampling import resample_frames, resampled_length

RECORD = {"denoise_strategy": "simple", "motion": "basic"}


@pytest.mark.compat
def test_an_extractor_saved_with_a_strategy_reloads_with_it_and_applies_it(fmriprep_derivatives, tmp_path):
    runs = sorted(fmriprep_derivatives.glob("sub-*/func/*_space-fsLR_den-91k_bold.dtseries.nii"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the sample runs' subcortex is 0: constant ROIs
        extractor = MnemoDynFeatureExtractor(denoise=RECORD, do_normalize=False).fit(runs)
    extractor.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved/preprocessor_config.json").read_text())["denoise"] == RECORD
    loaded = AutoFeatureExtractor.from_pretrained(tmp_path / "saved")
    assert isinstance(loaded, MnemoDynFeatureExtractor) and loaded.denoise == RECORD

    batch = loaded(runs)
    raw = MnemoDynFeatureExtractor(do_resample=False, do_normalize=False)
    statistics = np.asarray(loaded.roi_median), np.asarray(loaded.roi_iqr)
    for row, run in enumerate(runs):  # nilearn's cleaning, then resampling and the saved scaling, by hand
        confounds, sample_mask = load_confounds_strategy(str(run), **RECORD)
        cleaned = signal.clean(
            raw.roi_series(run)[0], detrend=False, standardize=None, confounds=confounds, sample_mask=sample_mask
        )
        expected = robust_scale(resample_frames(cleaned, 1.4, 0.735), *statistics)
        frames = int(batch["attention_mask"][row].sum())
        assert frames == len(expected)
        np.testing.assert_allclose(batch["input_values"][row, :frames], expected, rtol=1e-4, atol=1e-4)
    undenoised = MnemoDynFeatureExtractor.from_pretrained(tmp_path / "saved", denoise=None)(runs[0])
    kept = int(batch["attention_mask"][0].sum())  # sub-01: 27 frames kept of 30
    assert (
        undenoised["input_values"].shape[1]
        == resampled_length(30, 1.4, 0.735)
        > kept
        == resampled_length(27, 1.4, 0.735)
    )
    # explicit confounds (one per input) give the same as the files found beside the images
    confounds = [next(run.parent.glob("*_desc-confounds_*.tsv")) for run in runs]
    given = loaded([str(run) for run in runs], confounds=confounds)
    np.testing.assert_allclose(given["input_values"], batch["input_values"], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="Got 1 confounds for 2 inputs; expected one per input"):
        loaded(runs, confounds=confounds[:1])
