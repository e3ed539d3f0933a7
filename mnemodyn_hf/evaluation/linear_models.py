"""The linear read-out shared by every feature set (FC, pooled input, embeddings): standardise, then an
L2-penalised logistic regression (class-weighted) or ridge regression whose penalty is chosen by an inner
cross-validation grouped by subject on the training fold only.

With more features than training rows (FC: R (R - 1) / 2 features), the standardised training rows are rotated
onto their own row space first (thin SVD, Z = X V): an L2-penalised linear model's weights lie in that space and
||w|| = ||V^T w||, so the fitted model and its test predictions are the same as in the full feature space, at a
fraction of the cost. The standardisation is fitted once on the whole training fold (the inner CV, which only picks
the penalty, sees scaling statistics that include its validation rows; the test rows never enter).

    scores = fit_predict(x_train, y_train, subjects_train, x_test, task="classification")

Classification returns the probability of each class (N, C); regression returns predictions (N,).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

#: Inverse penalties tried for logistic regression and penalties tried for ridge regression.
LOGISTIC_C_GRID = tuple(np.logspace(-4, 1, 6))
RIDGE_ALPHA_GRID = tuple(np.logspace(-2, 5, 8))
#: Folds of the inner, subject-grouped cross-validation that picks the penalty.
INNER_FOLDS = 5


def fit_predict(
    x_train: np.ndarray,
    y_train: np.ndarray,
    groups_train: Sequence[str],
    x_test: np.ndarray,
    task: str,
    seed: int = 0,
) -> np.ndarray:
    """Fit on the training fold (penalty chosen by inner CV grouped by `groups_train`), predict the test fold.

    Args:
        x_train: (N, P) features; y_train: (N,) class indices or targets; groups_train: (N,) subject of each row.
        x_test: (M, P) features.
        task: "classification" (returns (M, C) class probabilities) or "regression" (returns (M,) predictions).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedGroupKFold
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if x_train.shape[1] > x_train.shape[0]:  # rotate onto the training rows' span (see the module docstring)
        x_train, x_test = row_space_coordinates(x_train, x_test)
    groups = np.asarray(groups_train)
    folds = min(INNER_FOLDS, len(np.unique(groups)))
    if task == "classification":
        y = np.asarray(y_train).astype(int)
        # every inner validation fold must see each class: no more folds than the rarest class has subjects
        smallest = min(len(np.unique(groups[y == c])) for c in np.unique(y))
        folds = max(2, min(folds, smallest))
        estimator = LogisticRegression(class_weight="balanced", max_iter=5000)
        search = GridSearchCV(
            estimator,
            {"C": LOGISTIC_C_GRID},
            scoring="roc_auc" if len(np.unique(y)) == 2 else "roc_auc_ovr",
            cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed),
        )
    else:
        y = np.asarray(y_train, np.float64)
        search = GridSearchCV(
            Ridge(), {"alpha": RIDGE_ALPHA_GRID}, scoring="neg_mean_squared_error", cv=GroupKFold(max(2, folds))
        )
    with warnings.catch_warnings():  # a penalty at the edge of the grid may not converge; the grid still ranks it
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(x_train, y, groups=groups)
    best = search.best_estimator_
    return best.predict_proba(x_test) if task == "classification" else best.predict(x_test)


def row_space_coordinates(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of training (N, P) and test (M, P) rows in an orthonormal basis of the training rows' span,
    (N, K) and (M, K) with K <= N, from the eigendecomposition of the N x N Gram matrix (cheaper than an SVD)."""
    from scipy.linalg import eigh

    eigenvalues, vectors = eigh(x_train @ x_train.T, driver="evd")
    keep = eigenvalues > eigenvalues.max() * 1e-10
    scale = np.sqrt(eigenvalues[keep])
    basis = vectors[:, keep]
    return basis * scale, (x_test @ x_train.T) @ basis / scale


__all__ = ["INNER_FOLDS", "LOGISTIC_C_GRID", "RIDGE_ALPHA_GRID", "fit_predict", "row_space_coordinates"]
