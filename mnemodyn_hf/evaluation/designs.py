"""The feature matrices a linear read-out fits on in one outer fold: fixed features sliced by the fold's rows, or
tangent connectivity whose reference covariance comes from the fold's training rows, with confounds regressed out
within the fold when asked."""

from __future__ import annotations

import numpy as np

from .confounds import regress_out
from .connectivity import TangentConnectivity
from .folds import Fold
from .methods import TANGENT_SERIES


def regresses(method: str) -> bool:
    """Whether `EvaluationSettings.regress_out` applies to a method: every feature read-out, not fine-tuning, not
    the controls."""
    return method != "mnemodyn_finetune" and not method.startswith("control_")


def deconfounded(
    method: str, fold: Fold, x_train: np.ndarray, x_test: np.ndarray, confounds: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The fold's features with `confounds` (N, C) regressed out (fitted on its training rows), or as they are
    when there are none or the method is not deconfounded (`regresses`)."""
    if confounds is None or not regresses(method):
        return x_train, x_test
    return regress_out(x_train, confounds[fold.train], x_test, confounds[fold.test])


def linear_design(
    method: str, fold: Fold, features: dict, bold: list[np.ndarray], confounds: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(x_train, x_test) of a linear read-out in one fold: `fc_tangent` and the `TANGENT_SERIES` read-outs fit the
    tangent space on the training rows only; every other method slices its fixed features (`embedding` for the
    linear probe)."""
    if method == "fc_tangent" or method in TANGENT_SERIES:
        series = bold if method == "fc_tangent" else features[TANGENT_SERIES[method]]
        tangent = TangentConnectivity()
        x_train = tangent.fit_transform([series[i] for i in fold.train])
        x_test = tangent.transform([series[i] for i in fold.test])
    else:
        x = features["embedding" if method == "mnemodyn_linear_probe" else method]
        x_train, x_test = x[fold.train], x[fold.test]
    return deconfounded(method, fold, x_train, x_test, confounds)


__all__ = ["deconfounded", "linear_design", "regresses"]
