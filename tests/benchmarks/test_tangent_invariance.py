import numpy as np

from benchmarks.tangent_invariance import random_maps


def test_the_maps_are_fixed_the_same_for_every_run_and_vanish_at_scale_zero():
    x = np.random.default_rng(1).standard_normal((50, 20))
    maps = random_maps(20, scale=0.5, seed=0)
    assert set(maps) == {"input", "linear", "nonlinear", "linear_after_zscore"}
    np.testing.assert_array_equal(maps["input"](x), x)
    again = random_maps(20, scale=0.5, seed=0)
    for name in ("linear", "nonlinear", "linear_after_zscore"):
        out = maps[name](x)
        assert out.shape == x.shape and not np.allclose(out, x)
        np.testing.assert_array_equal(out, again[name](x))  # one map per seed, whatever the run
    # the linear map acts on ROIs only: mapping frames one by one gives the same result
    np.testing.assert_allclose(maps["linear"](x[:1]), maps["linear"](x)[:1])
    for name, f in random_maps(20, scale=0.0, seed=0).items():
        expected = (x - x.mean(0)) / x.std(0) if name == "linear_after_zscore" else x
        np.testing.assert_allclose(f(x), expected, err_msg=name)
    # after the z-score the runs' ROI amplitudes no longer matter
    np.testing.assert_allclose(maps["linear_after_zscore"](3 * x), maps["linear_after_zscore"](x))
