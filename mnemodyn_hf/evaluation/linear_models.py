"""The linear read-out shared by every feature set (FC, pooled input, embeddings): standardise, then an
L2-penalised logistic regression (class-weighted) or ridge regression whose penalty is chosen by an inner
cross-validation grouped by `groups_train` (subject or site) on the training fold only.

With more features than training rows (FC: R (R - 1) / 2 features), the standardised training rows are rotated
onto their own row space first (thin SVD, Z = X V): an L2-penalised linear model's weights lie in that space and
||w|| = ||V^T w||, so the fitted model and its test predictions are the same as in the full feature space, at a
fraction of the cost. The standardisation is fitted once on the whole training fold (the inner CV, which only picks
the penalty, sees scaling statistics that include its validation rows; the test rows never enter).

    scores = fit_predict(x_train, y_train, subjects_train, x_test, task="classification")

Classification returns the probability of each class (N, C); regression returns predictions (N,).

The penalty search (`select_penalty`) computes what `GridSearchCV` over the grid did, without its machinery:

* the same inner splits (`inner_splits`): `StratifiedGroupKFold(shuffle=True, random_state=seed)` for
  classification, `GroupKFold` for regression, as many folds as the groups and the rarest class allow;
* logistic regression: every inner fit is scikit-learn's own problem (mean class-weighted log-loss plus
  ||w||^2 / (2 C sum of weights)) solved by scipy's L-BFGS-B from zero with scikit-learn's options (tol 1e-4,
  5000 iterations, 50 line-search steps), scored by ROC-AUC (one-vs-rest for several classes). The loss is plain
  numpy instead of `LogisticRegression.fit`, whose per-call overhead was most of the cost. The inner fits stop
  early (largest gradient coordinate below 1e-4), so their validation AUCs depend on the optimiser's path: warm
  starts along C moved them by up to 0.006 and changed the chosen C on 2 of 30 ABIDE dx folds, and a further
  rotation onto each inner training set would change the stopping point (the rule depends on the coordinates),
  so neither is used;
* ridge: closed form for every alpha at once from one eigendecomposition per inner fold (`ridge_path_predictions`);
* the penalty with the best mean inner score, the first in grid order on a tie; then one refit on the whole
  training fold with scikit-learn's estimator (`LogisticRegression` / `Ridge`).

On the same BLAS threads, the penalty and the predictions equal the `GridSearchCV` implementation's (to rounding;
benchmarks/bench_linear_readout.py). The matrices of a read-out on a few hundred rows are small: BLAS threads only
wait on each other there (the Gram matrix of ABIDE FC 3-4x slower on 2 threads of 2 busy cores), so problems up to
`SINGLE_THREAD_ELEMENTS` training values run on one BLAS thread. That also makes them reproducible across thread
counts: at a large C the early-stopped fits amplify rounding, and the same fit moved by up to 0.14 in probability
between 1 and 2 BLAS threads (sex from ABIDE FC).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Inverse penalties tried for logistic regression and penalties tried for ridge regression.
LOGISTIC_C_GRID = tuple(np.logspace(-4, 1, 6))
RIDGE_ALPHA_GRID = tuple(np.logspace(-2, 5, 8))
#: Folds of the inner, grouped cross-validation that picks the penalty.
INNER_FOLDS = 5
#: Training matrices with at most this many values are fitted on one BLAS thread (see the module docstring).
SINGLE_THREAD_ELEMENTS = 2**24
#: scikit-learn's `LogisticRegression` defaults (lbfgs) that the inner fits reproduce, and its max_iter here.
_LBFGS_OPTIONS = {"maxiter": 5000, "maxls": 50, "gtol": 1e-4, "ftol": 64 * np.finfo(float).eps}


@dataclass(frozen=True)
class PenaltySearch:
    """The inner cross-validation of one training fold: `scores` (candidates, inner folds) are ROC-AUCs
    (classification) or negative mean squared errors (regression) for each penalty of `grid`; `index` the chosen."""

    grid: tuple[float, ...]
    scores: np.ndarray
    index: int

    @property
    def penalty(self) -> float:
        """The chosen C (logistic regression) or alpha (ridge)."""
        return float(self.grid[self.index])

    @property
    def mean_scores(self) -> np.ndarray:
        return np.average(self.scores, axis=1)


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
        x_train: (N, P) features; y_train: (N,) class indices or targets; groups_train: (N,) subject (or site) of
            each row.
        x_test: (M, P) features.
        task: "classification" (returns (M, C) class probabilities) or "regression" (returns (M,) predictions).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    with _blas_threads(np.size(x_train)):
        x_train, x_test = standardized_coordinates(x_train, x_test)
        search = _search(x_train, y_train, groups_train, task, seed)
        if task == "classification":
            model = LogisticRegression(C=search.penalty, class_weight="balanced", max_iter=_LBFGS_OPTIONS["maxiter"])
            with warnings.catch_warnings():  # a penalty at the edge of the grid may not converge
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x_train, np.asarray(y_train).astype(int))
            return model.predict_proba(x_test)
        return Ridge(alpha=search.penalty).fit(x_train, np.asarray(y_train, np.float64)).predict(x_test)


def select_penalty(
    x_train: np.ndarray, y_train: np.ndarray, groups_train: Sequence[str], task: str, seed: int = 0
) -> PenaltySearch:
    """The inner cross-validation `fit_predict` runs on these training rows, and the penalty it chooses."""
    with _blas_threads(np.size(x_train)):
        x_train, _ = standardized_coordinates(x_train, np.asarray(x_train)[:1])
        return _search(x_train, y_train, groups_train, task, seed)


def standardized_coordinates(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training and test rows standardised with the training statistics, then, when there are more features than
    training rows, in the coordinates of the training rows' span (`row_space_coordinates`)."""
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    if x_train.shape[1] > x_train.shape[0]:  # rotate onto the training rows' span (see the module docstring)
        x_train, x_test = row_space_coordinates(x_train, x_test)
    return x_train, x_test


def inner_splits(y: np.ndarray, groups: Sequence[str], task: str, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row indices of the inner cross-validation: no group is on both sides.

    Classification: `StratifiedGroupKFold(shuffle=True, random_state=seed)` with no more folds than the groups and
    than the groups holding the rarest class (each validation fold should see every class), at least 2.
    Regression: `GroupKFold` with at most `INNER_FOLDS` folds, at least 2.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    groups = np.asarray(groups)
    folds = min(INNER_FOLDS, len(np.unique(groups)))
    rows = np.zeros((len(groups), 1))
    if task == "classification":
        y = np.asarray(y).astype(int)
        smallest = min(len(np.unique(groups[y == c])) for c in np.unique(y))
        splitter = StratifiedGroupKFold(max(2, min(folds, smallest)), shuffle=True, random_state=seed)
    else:
        splitter = GroupKFold(max(2, folds))
    return list(splitter.split(rows, y, groups))


def _search(x: np.ndarray, y: np.ndarray, groups: Sequence[str], task: str, seed: int) -> PenaltySearch:
    splits = inner_splits(y, groups, task, seed)
    if task == "classification":
        y = np.asarray(y).astype(int)
        grid = LOGISTIC_C_GRID
        scores = np.array([_logistic_scores(x[fit], y[fit], x[val], y[val]) for fit, val in splits]).T
    else:
        y = np.asarray(y, np.float64)
        grid = RIDGE_ALPHA_GRID
        scores = np.array([_ridge_scores(x[fit], y[fit], x[val], y[val]) for fit, val in splits]).T
    means = np.average(scores, axis=1)
    if np.isnan(scores).all():
        raise ValueError(f"Every inner fit failed on this training fold ({len(splits)} inner folds).")
    # GridSearchCV's choice: the best mean score (failed fits rank last), the first in grid order on a tie
    index = 0 if np.isnan(means).all() else int(np.nanargmax(means))
    return PenaltySearch(grid=tuple(float(value) for value in grid), scores=scores, index=index)


def _logistic_scores(x_fit, y_fit, x_val, y_val) -> list[float]:
    """Validation ROC-AUC of each C of the grid (NaN where scikit-learn's scorer would fail)."""
    from sklearn.metrics import roc_auc_score

    classes = np.unique(y_fit)
    if len(classes) < 2:  # LogisticRegression refuses one class: GridSearchCV scores the fit NaN
        return [np.nan] * len(LOGISTIC_C_GRID)
    scores = []
    for c in LOGISTIC_C_GRID:
        weights, intercept = logistic_lbfgs(x_fit, y_fit, c)
        raw = x_val @ weights.T + intercept
        try:
            if len(classes) == 2:  # the binary scorer ranks by the decision function
                scores.append(float(roc_auc_score(y_val, raw[:, 0])))
            else:
                scores.append(float(roc_auc_score(y_val, _softmax(raw), multi_class="ovr")))
        except ValueError:
            scores.append(np.nan)
    return scores


def logistic_lbfgs(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """The weights (K, P) and intercepts (K,) that `LogisticRegression(C=c, class_weight="balanced",
    max_iter=5000).fit(x, y)` finds (K = 1 for two classes, else one row per class): the same objective, start and
    L-BFGS-B options, with the loss in numpy."""
    from scipy.optimize import minimize
    from scipy.special import expit, logsumexp

    classes, encoded = np.unique(y, return_inverse=True)
    sample_weight = (len(y) / (len(classes) * np.bincount(encoded).astype(np.float64)))[encoded]  # "balanced"
    # the objective: the weighted mean loss + ||w||^2 / (2 C sum of weights)
    weight, l2 = sample_weight / sample_weight.sum(), 1.0 / (c * sample_weight.sum())
    features = x.shape[1]

    if len(classes) == 2:
        target = (encoded == 1).astype(np.float64)

        def objective(w):
            coef, raw = w[:features], x @ w[:features] + w[features]
            loss = weight @ (np.logaddexp(0.0, raw) - target * raw) + 0.5 * l2 * (coef @ coef)
            pointwise = weight * (expit(raw) - target)
            return loss, np.concatenate([x.T @ pointwise + l2 * coef, [pointwise.sum()]])

        w = minimize(objective, np.zeros(features + 1), method="L-BFGS-B", jac=True, options=_LBFGS_OPTIONS).x
        return w[None, :features], w[features:]

    onehot = np.eye(len(classes))[encoded]
    shape = (len(classes), features + 1)

    def multinomial(flat):
        w = flat.reshape(shape, order="F")  # scikit-learn's layout: the classes of one feature are contiguous
        coef, raw = w[:, :features], x @ w[:, :features].T + w[:, features]
        log_norm = logsumexp(raw, axis=1)
        loss = weight @ (log_norm - (raw * onehot).sum(axis=1)) + 0.5 * l2 * np.sum(coef * coef)
        pointwise = weight[:, None] * (np.exp(raw - log_norm[:, None]) - onehot)
        grad = np.concatenate([pointwise.T @ x + l2 * coef, pointwise.sum(axis=0)[:, None]], axis=1)
        return loss, grad.ravel(order="F")

    flat = minimize(multinomial, np.zeros(np.prod(shape)), method="L-BFGS-B", jac=True, options=_LBFGS_OPTIONS).x
    w = flat.reshape(shape, order="F")
    return w[:, :features], w[:, features]


def _softmax(raw: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return softmax(raw, axis=1)


def _ridge_scores(x_fit, y_fit, x_val, y_val) -> list[float]:
    """Negative validation mean squared error of each alpha of the grid."""
    predictions = ridge_path_predictions(x_fit, y_fit, x_val, RIDGE_ALPHA_GRID)
    return list(-np.mean((y_val[:, None] - predictions) ** 2, axis=0))


def ridge_path_predictions(
    x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, alphas: Sequence[float]
) -> np.ndarray:
    """(M, A) predictions on `x_val` of `Ridge(alpha).fit(x_fit, y_fit)` (with intercept) for every alpha, from one
    eigendecomposition of the centred training rows' Gram matrix (X X^T, or X^T X when that is smaller):
    w = V diag(1 / (lambda + alpha)) V^T X^T y, the intercept mean(y) - mean(X) w."""
    from scipy.linalg import eigh

    x_mean, y_mean = x_fit.mean(axis=0), y_fit.mean()
    centred, target, val = x_fit - x_mean, y_fit - y_mean, x_val - x_mean
    if centred.shape[1] <= centred.shape[0]:  # primal: eigenbasis of X^T X
        eigenvalues, vectors = eigh(centred.T @ centred)
        left, right = val @ vectors, vectors.T @ (centred.T @ target)
    else:  # dual: w = X^T (X X^T + alpha I)^-1 y
        eigenvalues, vectors = eigh(centred @ centred.T)
        left, right = (val @ centred.T) @ vectors, vectors.T @ target
    alphas = np.asarray(alphas, np.float64)
    return left @ (right[:, None] / (eigenvalues[:, None] + alphas[None, :])) + y_mean


def row_space_coordinates(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of training (N, P) and test (M, P) rows in an orthonormal basis of the training rows' span,
    (N, K) and (M, K) with K <= N, from the eigendecomposition of the N x N Gram matrix (cheaper than an SVD)."""
    from scipy.linalg import eigh

    eigenvalues, vectors = eigh(x_train @ x_train.T, driver="evd")
    keep = eigenvalues > eigenvalues.max() * 1e-10
    scale = np.sqrt(eigenvalues[keep])
    basis = vectors[:, keep]
    return basis * scale, (x_test @ x_train.T) @ basis / scale


def _blas_threads(elements: int):
    """One BLAS thread for a small problem (see the module docstring); the caller's setting otherwise."""
    if elements > SINGLE_THREAD_ELEMENTS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


__all__ = [
    "INNER_FOLDS",
    "LOGISTIC_C_GRID",
    "RIDGE_ALPHA_GRID",
    "PenaltySearch",
    "fit_predict",
    "inner_splits",
    "logistic_lbfgs",
    "ridge_path_predictions",
    "row_space_coordinates",
    "select_penalty",
    "standardized_coordinates",
]
