"""Confounds regressed out of features within a fold: the cohort's confound columns, and the regression fitted on
the training rows only."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np


def confound_matrix(cohort: datasets.Dataset, columns: Sequence[str]) -> np.ndarray | None:
    """The confound columns of the cohort as an (N, C) float array (None without columns); a missing column or a
    missing value is an error that names the column and the fix."""
    if not columns:
        return None
    values = []
    for column in columns:
        if column not in cohort.column_names:
            raise ValueError(
                f"Cannot regress out {column!r}: the cohort has no such column; its columns are {cohort.column_names}."
            )
        raw = [np.nan if value is None else value for value in cohort[column]]
        try:
            numbers = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"Cannot regress out {column!r}: its values must be numeric (got {raw[:3]}).") from error
        missing = np.flatnonzero(~np.isfinite(numbers))
        if len(missing):
            subjects = [str(cohort["subject"][i]) for i in missing[:5]]
            raise ValueError(
                f"Cannot regress out {column!r}: {len(missing)} row(s) have no value (subjects {subjects}"
                f"{', ...' if len(missing) > 5 else ''}). Drop those rows from the cohort first (e.g. "
                f"cohort.filter(lambda v: v is not None and v == v, input_columns={column!r})) or leave {column!r} "
                "out of regress_out."
            )
        values.append(numbers)
    return np.stack(values, axis=1)


def regress_out(
    x_train: np.ndarray, confounds_train: np.ndarray, x_test: np.ndarray, confounds_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Confounds regressed out of features, fitted on the training rows only: a least-squares regression of every
    feature column on the confounds with an intercept, its fitted part subtracted from the training and the test
    rows. Returns (train residuals, test residuals); training residuals are uncorrelated with each confound."""
    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    confounds_train = np.asarray(confounds_train, dtype=np.float64).reshape(len(x_train), -1)
    confounds_test = np.asarray(confounds_test, dtype=np.float64).reshape(len(x_test), -1)
    centre = confounds_train.mean(axis=0)  # centred design: the same fit, better conditioned
    design_train = np.column_stack([np.ones(len(x_train)), confounds_train - centre])
    design_test = np.column_stack([np.ones(len(x_test)), confounds_test - centre])
    coefficients, *_ = np.linalg.lstsq(design_train, x_train.reshape(len(x_train), -1), rcond=None)
    # only the confounds' part is removed: the intercept (the training mean) stays
    slopes = coefficients[1:]
    train = x_train.reshape(len(x_train), -1) - design_train[:, 1:] @ slopes
    test = x_test.reshape(len(x_test), -1) - design_test[:, 1:] @ slopes
    return train.reshape(x_train.shape), test.reshape(x_test.shape)


__all__ = ["confound_matrix", "regress_out"]
