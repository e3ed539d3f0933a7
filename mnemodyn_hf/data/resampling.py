"""`resample_runs`: every run of a cohort at one repetition time, the input a pretraining corpus needs."""

from __future__ import annotations

import datasets
import numpy as np

from ..preprocessing.temporal_resampling import resample_frames


def resample_runs(cohort: datasets.Dataset, repetition_time: float) -> datasets.Dataset:
    """The cohort with each `bold` resampled from its own `tr` to `repetition_time` seconds (band-limited, see
    `mnemodyn_hf.preprocessing.temporal_resampling`) and `tr` set to it. Other columns are kept.

    Raises:
        ValueError: a run has no TR (the message names it).
    """
    if not repetition_time > 0:
        raise ValueError(f"repetition_time must be positive seconds, got {repetition_time}.")
    missing = [subject for subject, tr in zip(cohort["subject"], cohort["tr"]) if tr is None]
    if missing:
        raise ValueError(f"{len(missing)} run(s) have no TR (subjects {missing[:5]}); fill the cohort's `tr` column.")

    def resample(row):
        bold = resample_frames(np.asarray(row["bold"], np.float64), float(row["tr"]), repetition_time)
        return {"bold": bold.astype(np.float32), "tr": repetition_time}

    return (
        cohort.with_format("numpy").map(resample, desc=f"Resampling runs to TR {repetition_time} s").with_format(None)
    )


__all__ = ["resample_runs"]
