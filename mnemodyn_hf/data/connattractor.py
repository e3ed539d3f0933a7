"""connattractor heat-vs-rest as event-locked epochs that position in the run cannot separate.

`load_connattractor_heat_windows` (the legacy design) cuts runs into fixed windows labelled by majority; there every
rest window is the run's first 20 s and every heat window starts at frame >= 40, so "early in the run" alone solves
it. Here every trial of a run gives one heat epoch and one rest epoch, both from the same part of the run:

* a trial (10 per run) is a heat stimulation (12.5 s), a pain rating (11 s, 4.5-8.5 s after the heat ends) and an
  inter-trial interval (ITI, 5.2-9.2 s from the rating's end to the next heat's onset);
* every event is shifted later by `haemodynamic_delay` (6 s) and frame k is taken at (k + 0.5) * TR, as in
  `heat_frame_labels`; a frame belongs to an interval when its time lies in it;
* heat epoch of trial i: the `epoch_frames` frames at the centre of the frames covered by the delayed heat
  (6-7 frames); rest epoch of trial i: the `epoch_frames` frames at the centre of the delayed ITI, from the end of
  the delayed rating of trial i to the delayed onset of heat i + 1 (the last trial's ITI ends with the run);
  an interval with too few frames gives no epoch; the centre is rounded towards the start.

Epoch length: `epoch_frames=3` (6 s), the longest for which both kinds exist in nearly every trial. The delayed
ITI holds 2-4 frames (5.2-9.2 s); 3 fit in 568 of the 594 ITIs of trials 0-8 (96 %), the last trial's ITI is cut by
the end of the run (at most 2 frames), so a run has 10 heat and 7-9 rest epochs, 660 + 568 in all. `epoch_frames=2`
fits every ITI but the last: 660 + 613 (594 + 19 last-trial ITIs); 4 frames fit in only 305 ITIs.

Non-steady-state frames: `steady_state_frames=5` drops frames 0-4 (0-10 s), acquired before the first trial starts
(10.216 s in every run). That covers the 3-5 volumes (6-10 s) usually discarded at TR 2 s while T1 saturation
settles, and the edge of the source's temporal filtering (frame 0's mean |z| across ROIs is 0.56, later frames
0.7-0.8), and it costs no task frame: the first delayed heat starts at 16.2 s (frame 8). The dropped frames enter no
epoch and no normalisation statistic.

Normalisation: each run is z-scored with its own temporal mean and standard deviation over its steady-state frames;
nothing is fitted across runs or subjects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from ..preprocessing.robust_scaling import zscore_frames
from .offline import CONNATTRACTOR_FIRST_TRIAL_ONSET, CONNATTRACTOR_TR, HEAT, REST, load_connattractor
from .schema import cohort_features

#: Default epoch length in frames (6 s at TR 2 s): the longest that fits in nearly every ITI (module docstring).
EPOCH_FRAMES = 3
#: Default number of non-steady-state frames dropped at the start of each run (0-10 s, before the first trial).
STEADY_STATE_FRAMES = 5
#: Events file of a connattractor run, next to its ROI table.
EVENTS_FILE = "sub-{subject}_task-heatpainwithregulationandratings_run-{run}_events.tsv"


def heat_rest_epochs(
    events: pd.DataFrame,
    num_frames: int,
    *,
    epoch_frames: int = EPOCH_FRAMES,
    tr: float = CONNATTRACTOR_TR,
    haemodynamic_delay: float = 6.0,
    steady_state_frames: int = STEADY_STATE_FRAMES,
) -> list[tuple[int, int, int]]:
    """The epochs of one run as `(label, first frame, trial)`, label `HEAT` (1) or `REST` (0), in time order.

    `events` is the run's events table (`onset`, `duration`, `temperature`: heat events have a temperature, rating
    events none). See the module docstring for the design; frames before `steady_state_frames` are never used.
    """
    if epoch_frames < 1:
        raise ValueError(f"epoch_frames must be positive, got {epoch_frames}.")
    run_start = events["onset"].iloc[0] - CONNATTRACTOR_FIRST_TRIAL_ONSET
    onsets = events["onset"].to_numpy(dtype=np.float64) - run_start + haemodynamic_delay
    ends = onsets + events["duration"].to_numpy(dtype=np.float64)
    is_heat = events["temperature"].notna().to_numpy()
    heats = np.flatnonzero(is_heat)
    times = (np.arange(num_frames) + 0.5) * tr
    usable = np.arange(num_frames) >= steady_state_frames

    def centred(start: float, stop: float) -> int | None:
        frames = np.flatnonzero(usable & (times >= start) & (times < stop))
        if len(frames) < epoch_frames:
            return None
        return int(frames[0]) + (len(frames) - epoch_frames) // 2

    epochs = []
    for trial, event in enumerate(heats):
        following = heats[trial + 1] if trial + 1 < len(heats) else len(events)
        ratings = [index for index in range(event + 1, following) if not is_heat[index]]
        heat_start = centred(onsets[event], ends[event])
        if heat_start is not None:
            epochs.append((HEAT, heat_start, trial))
        if ratings:  # the ITI runs from the end of the trial's (last) rating to the next heat, or the run's end
            iti_stop = onsets[following] if following < len(events) else num_frames * tr
            rest_start = centred(ends[ratings[-1]], iti_stop)
            if rest_start is not None:
                epochs.append((REST, rest_start, trial))
    return epochs


def load_connattractor_heat_epochs(
    *,
    epoch_frames: int = EPOCH_FRAMES,
    subjects: Sequence[str] | None = None,
    haemodynamic_delay: float = 6.0,
    steady_state_frames: int = STEADY_STATE_FRAMES,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.Dataset:
    """Heat (1) vs rest (0) epochs of the connattractor runs, interleaved trial by trial (module docstring).

    One row per epoch, in the cohort schema: `bold` (epoch_frames, 122) float32 from the run z-scored over its
    steady-state frames, `tr` 2.0, `subject`, `session` "", `run`, `site` "", `path`, and `heat` (int64, the label),
    `epoch_start` (int32, the epoch's first frame in the run), `trial` (int32, 0-9, the trial whose heat or ITI the
    epoch lies in) and `run_frames` (int32, the run's length, 191). `subjects` (e.g. `["01", ..., "22"]`) restricts
    the cohort. Defaults: 33 subjects x 2 runs, 660 heat and 568 rest epochs (10 and 7-9 per run).
    """
    runs = load_connattractor(haemodynamic_delay=haemodynamic_delay, cache_dir=cache_dir)
    if subjects is not None:
        wanted = set(subjects)
        runs = runs.filter(lambda subject: subject in wanted, input_columns="subject")
    runs = runs.remove_columns(["regulation", "heat"]).with_format("numpy")
    columns: dict[str, list] = {name: [] for name in (*runs.column_names, "heat", "epoch_start", "trial", "run_frames")}
    for row in runs:
        bold = np.asarray(row["bold"], dtype=np.float64)
        bold = zscore_frames(bold, reference=bold[steady_state_frames:])
        events_file = Path(row["path"]).with_name(EVENTS_FILE.format(subject=row["subject"], run=row["run"]))
        events = pd.read_csv(events_file, sep="\t", na_values=["n/a"])
        epochs = heat_rest_epochs(
            events,
            len(bold),
            epoch_frames=epoch_frames,
            tr=float(row["tr"]),
            haemodynamic_delay=haemodynamic_delay,
            steady_state_frames=steady_state_frames,
        )
        for label, start, trial in epochs:
            epoch = {**row, "bold": bold[start : start + epoch_frames].astype(np.float32), "heat": label}
            epoch.update(epoch_start=start, trial=trial, run_frames=len(bold))
            for name, values in columns.items():
                values.append(epoch[name])
    labels = {
        "heat": datasets.Value("int64"),
        "epoch_start": datasets.Value("int32"),
        "trial": datasets.Value("int32"),
        "run_frames": datasets.Value("int32"),
    }
    return datasets.Dataset.from_dict(columns, features=cohort_features(122, labels))


def position_only_features(dataset: datasets.Dataset, *, run_frames: int | None = None) -> np.ndarray:
    """A control "method" that sees only where a sample lies in its run: (N, 2) float64, `[c, c**2]`.

    `c` is the sample's centre frame divided by its run's length, from `epoch_start` (epochs) or `window_start`
    (windows of `window_runs`) and the length of `bold`; the run length is the `run_frames` column, else the
    `run_frames` argument (the legacy windows carry none: pass 191). A good heat-vs-rest design leaves a classifier
    on these features at chance.
    """
    start_column = "epoch_start" if "epoch_start" in dataset.column_names else "window_start"
    if start_column not in dataset.column_names:
        raise ValueError(f"The dataset has neither `epoch_start` nor `window_start`: {dataset.column_names}.")
    if "run_frames" in dataset.column_names:
        lengths = np.asarray(dataset["run_frames"], dtype=np.float64)
    elif run_frames is not None:
        lengths = np.full(len(dataset), float(run_frames))
    else:
        raise ValueError("The dataset has no `run_frames` column: pass run_frames=<frames per run>.")
    sample_frames = len(dataset[0]["bold"]) if len(dataset) else 0
    centre = (np.asarray(dataset[start_column], dtype=np.float64) + (sample_frames - 1) / 2) / lengths
    return np.stack([centre, centre**2], axis=1)


def within_sample_sd_features(dataset: datasets.Dataset) -> np.ndarray:
    """A control "method" that sees only how much the signal moves: (N, 1), the ROI mean of each sample's
    temporal standard deviation of `bold`."""
    bold = dataset.with_format("numpy")["bold"]
    return np.asarray([np.asarray(sample, dtype=np.float64).std(0).mean() for sample in bold])[:, None]


__all__ = [
    "EPOCH_FRAMES",
    "STEADY_STATE_FRAMES",
    "heat_rest_epochs",
    "load_connattractor_heat_epochs",
    "position_only_features",
    "within_sample_sd_features",
]
