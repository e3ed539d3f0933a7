"""The linear read-out: the penalty search reproduces GridSearchCV (same splits, same early-stopped fits, same choice),
ridge's closed form is scikit-learn's Ridge, and the inner folds never split a group."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from benchmarks.bench_linear_readout import fit_predict_before
from mnemodyn_hf.evaluation.connectivity import pearson_connectivity
from mnemodyn_hf.evaluation.linear_models import (
    INNER_FOLDS,
    LOGISTIC_C_GRID,
    RIDGE_ALPHA_GRID,
    fit_predict,
    inner_splits,
    logistic_lbfgs,
    ridge_path_predictions,
    select_penalty,
    standardized_coordinates,
)


@pytest.fixture(scope="module")
def abide_fc(abide_small):
    """Pearson FC (19,900 features) of the three test sites' subjects, with their labels, subjects and sites."""
    cohort = abide_small.with_format("numpy")
    return {
        "x": pearson_connectivity(list(cohort["bold"])),
        "dx": np.asarray(cohort["dx"]).astype(int),
        "age": np.asarray(cohort["age"], np.float64),
        "subject": np.asarray(cohort["subject"]).astype(str),
        "site": np.asarray(cohort["site"]).astype(str),
    }


def _held_out_site(data, site):
    train, test = data["site"] != site, data["site"] == site
    return data["x"][train], data["x"][test], train


@pytest.mark.parametrize(("label", "task"), [("dx", "classification"), ("age", "regression")])
@pytest.mark.parametrize("grouping", ["subject", "site"])
def test_fit_predict_equals_the_gridsearch_implementation_on_abide_fc(abide_fc, label, task, grouping):
    """Leave-one-site-out on real FC: the same chosen penalty and the same test predictions as the GridSearchCV code
    it replaced (benchmarks/bench_linear_readout.py). Both run on one BLAS thread: the early-stopped L-BFGS fits at
    large C amplify rounding, so the old code itself moves by up to 0.1 in probability between 1 and 2 threads."""
    y = abide_fc[label]
    for site in ("OHSU", "SBL"):
        x_train, x_test, train = _held_out_site(abide_fc, site)
        groups = abide_fc[grouping][train]
        with threadpool_limits(limits=1, user_api="blas"):
            expected, penalty = fit_predict_before(x_train, y[train], groups, x_test, task, return_penalty=True)
        search = select_penalty(x_train, y[train], groups, task)
        assert search.penalty == penalty, (site, search.mean_scores)
        np.testing.assert_allclose(fit_predict(x_train, y[train], groups, x_test, task), expected, rtol=0, atol=1e-9)


def test_the_inner_scores_are_gridsearch_cv_scores_with_groups_of_many_rows(abide_fc):
    """Sites as groups (30-40 rows each): the inner scores equal GridSearchCV's split by split, so the search
    validates on whole groups exactly as GridSearchCV with StratifiedGroupKFold did; a search that ignored the
    groups would score other rows."""
    x, y, sites = abide_fc["x"][:, :300], abide_fc["dx"], abide_fc["site"]
    search = select_penalty(x, y, sites, "classification")
    features, _ = standardized_coordinates(x, x[:1])
    with threadpool_limits(limits=1, user_api="blas"):
        reference = GridSearchCV(
            LogisticRegression(class_weight="balanced", max_iter=5000),
            {"C": LOGISTIC_C_GRID},
            scoring="roc_auc",
            cv=StratifiedGroupKFold(3, shuffle=True, random_state=0),  # 3 sites, each with both classes
        ).fit(features, y, groups=sites)
    splits = inner_splits(y, sites, "classification")
    assert len(splits) == search.scores.shape[1] == reference.n_splits_
    expected = np.array([reference.cv_results_[f"split{k}_test_score"] for k in range(reference.n_splits_)]).T
    np.testing.assert_allclose(search.scores, expected, rtol=0, atol=1e-12)
    assert search.index == reference.best_index_


def test_a_three_class_label_agrees_with_gridsearch(abide_fc):
    """Multinomial logistic regression scored by one-vs-rest ROC-AUC: site (3 classes) from FC on half the
    subjects, predicted on the other half."""
    x, sites, subjects = abide_fc["x"], abide_fc["site"], abide_fc["subject"]
    y = np.unique(sites, return_inverse=True)[1]
    train = np.arange(len(y)) % 2 == 0
    with threadpool_limits(limits=1, user_api="blas"):
        expected, penalty = fit_predict_before(
            x[train], y[train], subjects[train], x[~train], "classification", return_penalty=True
        )
    assert select_penalty(x[train], y[train], subjects[train], "classification").penalty == penalty
    predicted = fit_predict(x[train], y[train], subjects[train], x[~train], "classification")
    assert predicted.shape == (int((~train).sum()), 3)
    np.testing.assert_allclose(predicted, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("shape", [(60, 20), (40, 90)])  # primal (features <= rows) and dual branches
def test_ridge_closed_form_equals_scikit_learn_ridge(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * rng.uniform(0.1, 3, shape[1]) + rng.standard_normal(shape[1])
    y = x[:, :5] @ rng.standard_normal(5) + 3.0 + rng.standard_normal(shape[0])
    x_val = rng.standard_normal((15, shape[1]))
    predictions = ridge_path_predictions(x, y, x_val, RIDGE_ALPHA_GRID)
    for k, alpha in enumerate(RIDGE_ALPHA_GRID):
        expected = Ridge(alpha=alpha).fit(x, y).predict(x_val)
        np.testing.assert_allclose(predictions[:, k], expected, rtol=0, atol=1e-8 * np.abs(expected).max())


def test_the_ridge_closed_form_on_real_fc_rows(abide_fc):
    x, _ = standardized_coordinates(abide_fc["x"][:60], abide_fc["x"][:1])
    y = abide_fc["age"][:60]
    predictions = ridge_path_predictions(x[:45], y[:45], x[45:], RIDGE_ALPHA_GRID)
    for k, alpha in enumerate(RIDGE_ALPHA_GRID):
        np.testing.assert_allclose(predictions[:, k], Ridge(alpha=alpha).fit(x[:45], y[:45]).predict(x[45:]), atol=1e-8)


@pytest.mark.parametrize("classes", [2, 3])
def test_the_inner_fit_is_logistic_regressions_fit(classes):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((80, 12))
    y = np.minimum(np.argsort(np.argsort(x[:, 0] + rng.standard_normal(80))) * classes // 80, classes - 1)
    y[:5] = 0  # unbalanced classes: the class weights matter
    for c in (1e-3, 1.0):
        weights, intercept = logistic_lbfgs(x, y, c)
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, y)
        np.testing.assert_allclose(weights, model.coef_, atol=1e-9)
        np.testing.assert_allclose(intercept, model.intercept_, atol=1e-9)


def test_inner_splits_are_scikit_learns_and_keep_every_group_on_one_side():
    rng = np.random.default_rng(2)
    groups = np.repeat([f"g{i:02d}" for i in range(12)], rng.integers(2, 6, 12))
    y = (np.unique(groups, return_inverse=True)[1] % 3 == 0).astype(int)  # 4 of 12 groups hold class 1
    splits = inner_splits(y, groups, "classification", seed=3)
    rows = np.zeros((len(y), 1))
    reference = StratifiedGroupKFold(4, shuffle=True, random_state=3).split(rows, y, groups)  # 4 groups of class 1
    for (fit, val), (fit_expected, val_expected) in zip(splits, reference, strict=True):
        np.testing.assert_array_equal(fit, fit_expected)
        np.testing.assert_array_equal(val, val_expected)
    regression = inner_splits(y.astype(float), groups, "regression")
    assert len(regression) == INNER_FOLDS
    for (fit, val), (fit_expected, val_expected) in zip(regression, GroupKFold(INNER_FOLDS).split(rows, y, groups)):
        np.testing.assert_array_equal(fit, fit_expected)
        np.testing.assert_array_equal(val, val_expected)
    for fit, val in splits + regression:
        assert not set(groups[fit]) & set(groups[val])
        assert len(fit) + len(val) == len(y)


def test_ties_go_to_the_first_penalty_of_the_grid():
    """Constant features: every C scores 0.5, so GridSearchCV (and the search) keeps the first, the smallest."""
    y = np.tile([0, 1], 20)
    search = select_penalty(np.ones((40, 3)), y, np.arange(40).astype(str), "classification")
    np.testing.assert_array_equal(search.mean_scores, 0.5)
    assert search.index == 0 and search.penalty == LOGISTIC_C_GRID[0]
