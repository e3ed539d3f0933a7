import numpy as np
from sklearn.covariance import ledoit_wolf

from mnemodyn_hf.evaluation import TangentConnectivity, pearson_connectivity
from mnemodyn_hf.evaluation.connectivity import _ledoit_wolf
from mnemodyn_hf.preprocessing.robust_scaling import zscore_frames


def test_covariances_are_scikit_learns_ledoit_wolf_and_a_constant_roi_stays_finite(abide_small):
    runs = list(abide_small.with_format("numpy")["bold"][:3])
    runs[0] = runs[0].copy()
    runs[0][:, 7] = 0  # no coverage
    ours = _ledoit_wolf(runs).numpy()
    for run, covariance in zip(runs, ours):
        np.testing.assert_allclose(covariance, ledoit_wolf(zscore_frames(run))[0], atol=1e-12)
    assert np.linalg.eigvalsh(ours[0]).min() > 0


def test_tangent_vectors_agree_with_nilearns_and_are_fitted_on_training_runs_only(abide_small):
    """nilearn iterates to the geometric mean; the log-Euclidean reference is close to it on real covariances."""
    from nilearn.connectome import ConnectivityMeasure
    from threadpoolctl import threadpool_limits

    runs = [
        zscore_frames(run[:, :60]) for run in abide_small.with_format("numpy")["bold"][:16]
    ]  # 60 ROIs: nilearn is slow
    tangent = TangentConnectivity()
    train, test = tangent.fit_transform(runs[:12]), tangent.transform(runs[12:])
    reference = ConnectivityMeasure(kind="tangent", vectorize=True, discard_diagonal=True, standardize=False)
    with threadpool_limits(1):  # nilearn's geometric mean: many small eigendecompositions
        expected_train = reference.fit_transform(runs[:12])
        expected_test = reference.transform(runs[12:])
    for ours, theirs in ((train, expected_train), (test, expected_test)):
        assert ours.shape == theirs.shape == (len(ours), 60 * 59 // 2)
        assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.85  # measured 0.90 on 40 runs x 200 ROIs
    np.testing.assert_allclose(TangentConnectivity().fit_transform(runs[:12])[:3], train[:3])
    assert not np.allclose(TangentConnectivity().fit_transform(runs[4:16])[:3], train[4:7])  # depends on the fit


def test_pearson_connectivity_shape_on_real_runs(abide_small):
    features = pearson_connectivity(abide_small.with_format("numpy")["bold"][:2])
    assert features.shape == (2, 19900) and np.isfinite(features).all()
    assert np.abs(features).max() < np.arctanh(1 - 1e-6) + 1e-9
