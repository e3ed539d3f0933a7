"""Masked-reconstruction baselines fitted on training subjects, the bars above the trivial fills.

`mnemodyn_hf.reconstruction_baselines` fills hidden entries from the same ROI's visible frames of the same window;
the two predictors here learn the cross-ROI (and short-range temporal) structure of BOLD from TRAINING runs first,
then fill the test windows from their visible entries only. Both follow the trivial fills' convention:
`fill(values, visible)` takes (B, T, R) values and a (B, T, R) bool `visible` (True = the entry may be read) and
returns (B, T, R) values of the same dtype where visible entries are passed through unchanged and hidden entries
are predicted. Hidden entries of `values` are never read (they may hold anything finite or not).

* `SpatialConditionalMean`: a Gaussian model of one frame, x ~ N(mu, S) over the R ROIs; every hidden entry is
  the conditional mean given the visible ROIs of the same frame. No temporal information; a frame with nothing
  visible gets mu.
* `SpatioTemporalRidge`: the spatial conditional mean followed by one ridge regression per ROI on features of the
  frames t - k .. t + k, fitted on training runs masked like the evaluation masks them (`mask_fn`), the
  regularisation chosen per ROI on held-out training runs.

Series are expected normalised (e.g. z-scored per run) the same way in `fit` and `fill`. Computation is float64.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

#: Ridge penalties tried by `SpatioTemporalRidge`, per training row on standardised features (a penalty `a` adds
#: `a * n` to the diagonal of the Gram matrix of `n` rows).
DEFAULT_ALPHAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)

SeriesList = Sequence[torch.Tensor | np.ndarray]
MaskFunction = Callable[[torch.Tensor], torch.Tensor]


def ledoit_wolf_covariance(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mean (R,), Ledoit-Wolf shrunk covariance (R, R) and shrinkage in [0, 1] of (N, R) frames, float64.

    The covariance is (1 - s) S + s nu I with S the maximum-likelihood covariance (divided by N), nu = trace(S) / R
    and s the Ledoit & Wolf (2004) estimate of the optimal shrinkage towards nu I (the formula of
    `sklearn.covariance.ledoit_wolf`): s = min(b2, d2) / d2, d2 = ||S - nu I||_F^2 / R,
    b2 = (sum_n ||x_n||^4 / N - ||S||_F^2) / (N R).
    """
    frames = frames.to(torch.float64)
    count, rois = frames.shape
    mean = frames.mean(0)
    centred = frames - mean
    covariance = centred.T @ centred / count
    nu = covariance.diagonal().mean()
    d2 = ((covariance - nu * torch.eye(rois, dtype=torch.float64)) ** 2).sum() / rois
    b2 = ((centred**2).sum(1).pow(2).sum() / count - (covariance**2).sum()) / (count * rois)
    shrinkage = float(torch.clamp(b2, max=d2) / d2) if float(d2) > 0 else 1.0
    return mean, (1 - shrinkage) * covariance + shrinkage * nu * torch.eye(rois, dtype=torch.float64), shrinkage


@contextlib.contextmanager
def _single_thread():
    """Run torch on one intra-op thread inside the block (restored after): batched LAPACK factorisations of many
    small matrices are much faster that way than with MKL's nested threading."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _as_runs(series_list: SeriesList, rois: int | None = None) -> list[torch.Tensor]:
    """Validate training runs: a non-empty list of finite (T, R) arrays with one R -> float64 tensors."""
    if isinstance(series_list, (torch.Tensor, np.ndarray)) and np.ndim(series_list) == 2:
        raise TypeError("fit takes a LIST of (T, R) runs; wrap a single run as [run].")
    runs = [torch.as_tensor(np.asarray(run) if not isinstance(run, torch.Tensor) else run).to(torch.float64).cpu()
            for run in series_list]  # fmt: skip
    if not runs:
        raise ValueError("fit needs at least one training run (a (T, R) array).")
    shapes = [tuple(run.shape) for run in runs]
    if any(run.ndim != 2 for run in runs) or len({run.shape[1] for run in runs}) != 1:
        raise ValueError(f"every training run must be a (frames, rois) array with the same rois; got shapes {shapes}.")
    if rois is not None and runs[0].shape[1] != rois:
        raise ValueError(f"the runs have {runs[0].shape[1]} ROIs, the model was built for {rois}.")
    if not all(bool(torch.isfinite(run).all()) for run in runs):
        raise ValueError("training runs contain NaN/Inf values; interpolate or drop bad frames before fitting.")
    return runs


def _check_fill_inputs(values: torch.Tensor, visible: torch.Tensor, rois: int | None, name: str) -> None:
    if rois is None:
        raise RuntimeError(f"{name} is not fitted: call `.fit(training_runs, ...)` before `.fill`.")
    if values.ndim != 3 or tuple(visible.shape) != tuple(values.shape):
        raise ValueError(
            f"fill takes (B, T, R) values and a bool visible of the same shape; got {tuple(values.shape)} and "
            f"{tuple(visible.shape)} (add a batch axis with [None] for a single (T, R) window)."
        )
    if visible.dtype != torch.bool:
        raise TypeError(f"visible must be a bool tensor (True = visible), got {visible.dtype}; use `mask.bool()`.")
    if values.shape[-1] != rois:
        raise ValueError(f"values have {values.shape[-1]} ROIs on their last axis, {name} was fitted on {rois}.")


class SpatialConditionalMean:
    """Gaussian conditional mean of the hidden ROIs given the visible ROIs of the same frame.

    `fit` estimates the ROI mean mu (R,) and a shrunk covariance S (R, R) from all frames of the training runs
    (Ledoit-Wolf shrinkage towards trace(S) / R * I by default, or a fixed `shrinkage` s: (1 - s) S + s nu I), and
    its inverse P = S^-1. For a frame x with visible ROIs V and hidden ROIs H, `fill` returns

        x_H = mu_H + S_HV S_VV^-1 (x_V - mu_V)  =  mu_H - P_HH^-1 P_HV (x_V - mu_V),

    the two forms being equal (block inversion). The first solves a |V| x |V| system, the second a |H| x |H| one;
    each frame uses the smaller (the precision form when at most half the ROIs are hidden). A frame with nothing
    visible gets mu, one with nothing hidden is returned as is.

    Cost: frames are grouped by visibility pattern (rows of the mask, `torch.unique`) so a pattern shared by many
    frames (whole-frame masks, masks constant in time) is Cholesky-factorised once; distinct patterns are factorised
    in batches of equal size k = min(|H|, |V|), so B * T frames cost O(#patterns * k^3 / 3 + B * T * (R^2 + k^2))
    flops, memory bounded by `max_chunk_elements` float64 values per batch.
    """

    def __init__(self, shrinkage: float | None = None, max_chunk_elements: int = 2**22):
        if shrinkage is not None and not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be None (Ledoit-Wolf) or in [0, 1], got {shrinkage}.")
        self.shrinkage = shrinkage
        self.max_chunk_elements = max_chunk_elements
        self.mean_: torch.Tensor | None = None  # (R,)
        self.covariance_: torch.Tensor | None = None  # (R, R), shrunk
        self.precision_: torch.Tensor | None = None  # (R, R)
        self.shrinkage_: float | None = None

    @property
    def num_rois(self) -> int | None:
        return None if self.mean_ is None else int(self.mean_.shape[0])

    def fit(self, series_list: SeriesList) -> SpatialConditionalMean:
        """Fit mu and S on the frames of training runs: a list of (T_i, R) arrays, normalised like the test data."""
        frames = torch.cat(_as_runs(series_list))
        if len(frames) < 2:
            raise ValueError("fit needs at least 2 training frames to estimate a covariance.")
        mean, covariance, shrinkage = ledoit_wolf_covariance(frames)
        if not float(covariance.diagonal().max()) > 0:
            raise ValueError("the training frames have no variance (every ROI constant); fit on normalised BOLD runs.")
        if self.shrinkage is not None:
            raw = torch.cov(frames.T, correction=0).reshape(len(mean), len(mean))
            nu = raw.diagonal().mean()
            shrinkage = self.shrinkage
            covariance = (1 - shrinkage) * raw + shrinkage * nu * torch.eye(len(mean), dtype=torch.float64)
        # a floor keeps S invertible when the data are rank deficient and no shrinkage was estimated or asked for
        covariance = covariance + 1e-10 * covariance.diagonal().mean() * torch.eye(len(mean), dtype=torch.float64)
        self.mean_, self.covariance_, self.shrinkage_ = mean, covariance, shrinkage
        self.precision_ = torch.cholesky_inverse(torch.linalg.cholesky(covariance))
        return self

    def fill(self, values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """(B, T, R) values and bool visibility -> (B, T, R): hidden entries replaced by their conditional mean."""
        _check_fill_inputs(values, visible, self.num_rois, type(self).__name__)
        shape, rois = values.shape, values.shape[-1]
        frames = values.reshape(-1, rois).detach().to("cpu", torch.float64)
        seen = visible.reshape(-1, rois).cpu()
        centred = torch.where(seen, frames - self.mean_, torch.zeros((), dtype=torch.float64))
        filled = self.mean_ + self.conditional_deviation(centred, seen)
        out = torch.where(seen, frames, filled).reshape(shape)
        return torch.where(visible, values, out.to(device=values.device, dtype=values.dtype))

    def conditional_deviation(self, centred: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """E[x - mu | visible part]: (N, R) float64 deviations x - mu (zero where hidden) and (N, R) bool -> (N, R).

        Visible entries come back unchanged, hidden ones are S_HV S_VV^-1 d_V = -P_HH^-1 P_HV d_V.
        """
        rois = centred.shape[1]
        patterns, inverse = torch.unique(visible, dim=0, return_inverse=True)  # (M, R), (N,)
        hidden_count = (~patterns).sum(1)
        precision_side = hidden_count <= rois - hidden_count  # solve |H| x |H| rather than |V| x |V|
        size = torch.where(precision_side, hidden_count, rois - hidden_count)
        active = (hidden_count > 0) & (hidden_count < rois)
        # sort patterns by (side, size), then frames by pattern: every group is one slice of each
        key = torch.where(active, precision_side.long() * (rois + 1) + size, -1)
        pattern_order = torch.argsort(key, stable=True)
        rank = torch.empty_like(pattern_order)
        rank[pattern_order] = torch.arange(len(pattern_order))
        frame_rank = rank[inverse]
        frame_order = torch.argsort(frame_rank, stable=True)
        frame_rank = frame_rank[frame_order]
        sorted_centred = centred[frame_order]
        out = sorted_centred.clone()
        keys, counts = torch.unique_consecutive(key[pattern_order], return_counts=True)
        pattern_bounds = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        frame_bounds = torch.searchsorted(frame_rank, pattern_bounds).tolist()
        for group, group_key in enumerate(keys.tolist()):
            if group_key < 0:  # nothing hidden, or nothing visible (deviation 0: the mean)
                continue
            first, last = int(pattern_bounds[group]), int(pattern_bounds[group + 1])
            rows = slice(frame_bounds[group], frame_bounds[group + 1])
            out[rows] = self._solve_group(
                sorted_centred[rows], patterns[pattern_order[first:last]], frame_rank[rows] - first,
                precision_side=group_key > rois, k=group_key % (rois + 1),
            )  # fmt: skip
        result = torch.empty_like(out)
        result[frame_order] = out
        return result

    def _solve_group(
        self, centred: torch.Tensor, patterns: torch.Tensor, owner: torch.Tensor, precision_side: bool, k: int
    ) -> torch.Tensor:
        """Conditional deviations (n, R) of n frames `centred` (n, R) whose visibility patterns are
        `patterns[owner]` ((m, R) bool, owner (n,) ascending), all with k = min(|H|, |V|)."""
        matrix = self.precision_ if precision_side else self.covariance_
        # per pattern, the k indices of H (precision side) or of V (covariance side), ascending
        chosen = ~patterns if precision_side else patterns
        index = torch.nonzero(chosen)[:, 1].view(len(patterns), k)  # (m, k); nonzero is row-major
        source = -(centred @ self.precision_) if precision_side else centred  # -P_HV d_V = -(d P)_H as d_H = 0
        out = centred.clone()
        step = max(1, self.max_chunk_elements // (k * k))
        pattern_starts = torch.arange(0, len(patterns) + step, step).clamp_max(len(patterns))
        frame_starts = torch.searchsorted(owner, pattern_starts).tolist()
        for chunk, first in enumerate(pattern_starts[:-1].tolist()):
            block = index[first : first + step]  # (m', k)
            flat = block[:, :, None] * matrix.shape[0] + block[:, None, :]
            with _single_thread():  # batched small Cholesky: MKL's threading slows it down 10-100x
                factor, info = torch.linalg.cholesky_ex(matrix.take(flat))  # (m', k, k) sub-matrices
            if bool(info.any()):
                raise RuntimeError("a sub-matrix of the covariance is not positive definite; refit with shrinkage > 0.")
            begin, end = frame_starts[chunk], frame_starts[chunk + 1]
            one_frame_per_pattern = end - begin == len(block)  # owner is ascending and covers every pattern
            for sub in range(begin, end, step):
                rows = slice(sub, min(sub + step, end))
                local = owner[rows] - first
                columns = block[local]  # (n', k)
                lower = factor[sub - begin : rows.stop - begin] if one_frame_per_pattern else factor[local]
                rhs = source[rows].gather(1, columns)[..., None]
                half = torch.linalg.solve_triangular(lower, rhs, upper=False)
                solved = torch.linalg.solve_triangular(lower.mT, half, upper=True)[..., 0]  # (n', k)
                if precision_side:
                    out[rows] = out[rows].scatter(1, columns, solved)
                else:  # S_:V S_VV^-1 d_V, kept on H
                    full = torch.zeros_like(out[rows]).scatter(1, columns, solved) @ self.covariance_
                    hidden = torch.ones_like(full, dtype=torch.bool).scatter(1, columns, False)
                    out[rows] = torch.where(hidden, full, out[rows])
        return out


class SpatioTemporalRidge:
    """Spatial conditional mean refined by one ridge regression per ROI on the frames t - k .. t + k.

    Prediction of a hidden entry (t, r) of a (B, T, R) window, in two stages:

    1. `SpatialConditionalMean` (fitted on the same training runs) fills every hidden entry of every frame from the
       visible ROIs of that frame: c (B, T, R), c = x where visible.
    2. A ridge model of ROI r maps features of the frames t + j, j = -k .. k (`context` = k), to x[t, r] - mu_r.
       Per frame t + j, with d = x - mu (visible entries only) and m the visibility:

       * own ROI: m[t+j, r] * d[t+j, r] (its visible value, 0 when hidden), (1 - m[t+j, r]) * (c - mu)[t+j, r]
         (its spatial estimate when hidden, 0 when visible), m[t+j, r];
       * whole frame: the `num_components` leading principal-component scores of (c - mu)[t+j] (eigenvectors of the
         fitted covariance) and the fraction of visible ROIs of frame t + j.

       That is F = (2k + 1) * (4 + num_components) features (100 with the defaults), standardised per ROI, with an
       unpenalised intercept. Frames beyond the window count as fully hidden. Every feature is a function of
       visible entries only, so test-time predictions never read a hidden value. Compressing the other ROIs to
       their principal scores (rather than (2k + 1) * R raw values) keeps F independent of R (fits take seconds at
       R = 94-200, well under a minute at R = 450) and the per-ROI models well determined by a few thousand rows;
       the same-frame information of all ROIs enters exactly through the spatial estimate.

    Fitting (`fit(runs, mask_fn)`): each training run (T_i, R) is masked `num_mask_draws` times by the caller's
    `mask_fn` (the evaluation's mask distribution, so the per-ROI models learn e.g. how often the neighbouring frames
    of a hidden entry are hidden too); the rows of ROI r are its hidden entries, at most `max_rows_per_roi` drawn at
    random per ROI (`seed`). The last `validation_fraction` of the runs (at least one; the last part of the frames
    when there is a single run) is held out: stage 1 and the ridge models are fitted on the other runs for every
    penalty of `alphas` (relative to the row count on standardised features), each ROI keeps the penalty with the
    lowest held-out squared error, and both stages are refitted on all runs with those penalties. A ROI never hidden
    in training falls back to its spatial estimate. The test data are never used.
    """

    def __init__(
        self,
        context: int = 2,
        num_components: int = 16,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        num_mask_draws: int = 2,
        max_rows_per_roi: int = 4000,
        validation_fraction: float = 0.2,
        shrinkage: float | None = None,
        seed: int = 0,
        max_chunk_elements: int = 2**22,
    ):
        if context < 0 or num_components < 0 or num_mask_draws < 1 or max_rows_per_roi < 1 or not alphas:
            raise ValueError(
                "context and num_components must be >= 0, num_mask_draws and max_rows_per_roi >= 1 and alphas "
                f"non-empty; got {context}, {num_components}, {num_mask_draws}, {max_rows_per_roi}, {alphas}."
            )
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
        self.context, self.num_components, self.alphas = context, num_components, tuple(float(a) for a in alphas)
        self.num_mask_draws, self.max_rows_per_roi = num_mask_draws, max_rows_per_roi
        self.validation_fraction, self.shrinkage, self.seed = validation_fraction, shrinkage, seed
        self.max_chunk_elements = max_chunk_elements
        self.spatial_: SpatialConditionalMean | None = None
        self.components_: torch.Tensor | None = None  # (R, q) leading eigenvectors of the covariance
        self.weight_: torch.Tensor | None = None  # (R, F) on the raw features
        self.bias_: torch.Tensor | None = None  # (R,), includes mu
        self.alpha_: torch.Tensor | None = None  # (R,) penalty chosen per ROI
        self.validation_r2_: float | None = None  # pooled R^2 of the chosen models on the held-out training runs

    @property
    def num_rois(self) -> int | None:
        return None if self.bias_ is None else int(self.bias_.shape[0])

    @property
    def num_features(self) -> int:
        """F = (2k + 1) * (4 + q)."""
        return (2 * self.context + 1) * (4 + self.num_components)

    def fit(self, series_list: SeriesList, mask_fn: MaskFunction) -> SpatioTemporalRidge:
        """Fit on training runs (a list of (T_i, R) arrays) masked by `mask_fn`: (1, T_i, R) float64 values ->
        (1, T_i, R) bool, True = visible, drawing masks like the evaluation does."""
        runs = _as_runs(series_list)
        masks = [[self._draw(run, mask_fn) for _ in range(self.num_mask_draws)] for run in runs]
        if len(runs) >= 2:
            held_out = max(1, round(self.validation_fraction * len(runs)))
            fit_part, validation_part = (runs[:-held_out], masks[:-held_out]), (runs[-held_out:], masks[-held_out:])
        else:
            cut = round(len(runs[0]) * (1 - self.validation_fraction))
            if min(cut, len(runs[0]) - cut) < 2:
                raise ValueError(f"a single training run of {len(runs[0])} frames is too short to hold part out.")
            fit_part = ([runs[0][:cut]], [[mask[:cut] for mask in masks[0]]])
            validation_part = ([runs[0][cut:]], [[mask[cut:] for mask in masks[0]]])
        generator = torch.Generator().manual_seed(self.seed)
        self._fit_spatial(fit_part[0])
        statistics = self._statistics(*fit_part, generator)
        errors, totals = self._validation_errors(statistics, *validation_part, generator)  # (R, A), (R,)
        pooled = errors.sum(0).argmin()
        choice = torch.where(totals > 0, errors.argmin(1), pooled)
        self.validation_r2_ = float(1 - errors.gather(1, choice[:, None]).sum() / totals.sum().clamp_min(1e-12))
        self.alpha_ = torch.tensor(self.alphas, dtype=torch.float64)[choice]
        self._fit_spatial(runs)
        self._set_coefficients(self._statistics(runs, masks, generator), self.alpha_)
        return self

    def fill(self, values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """(B, T, R) values and bool visibility -> (B, T, R): hidden entries predicted, visible ones passed through."""
        _check_fill_inputs(values, visible, self.num_rois, type(self).__name__)
        frames = values.detach().to("cpu", torch.float64)
        seen = visible.cpu()
        batch, length, rois = frames.shape
        own_weight, shared_weight = self._split_weights()
        out = torch.empty_like(frames)
        step = max(1, 2 * self.max_chunk_elements // (length * rois))  # windows per chunk
        for first in range(0, batch, step):
            own, shared = self._bases(frames[first : first + step], seen[first : first + step])
            # every entry's prediction at once: bias + sum_j own[t+j, r] . w_own[r, j] + shared[t+j] . w_shared[r, j]
            predicted = self.bias_.expand(len(own), length, rois).clone()
            for offset in range(2 * self.context + 1):
                predicted += (own[:, offset : offset + length] * own_weight[:, offset]).sum(-1)
                predicted += shared[:, offset : offset + length] @ shared_weight[:, offset].T
            out[first : first + step] = torch.where(seen[first : first + step], frames[first : first + step], predicted)
        return torch.where(visible, values, out.to(device=values.device, dtype=values.dtype))

    def _split_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`weight_` (R, F) as own-ROI weights (R, 2k + 1, 3) and whole-frame weights (R, 2k + 1, q + 1)."""
        blocks = self.weight_.view(len(self.weight_), 2 * self.context + 1, 4 + self.num_components)
        return blocks[..., :3], blocks[..., 3:]

    # -- internals -------------------------------------------------------------------------------------------------

    def _draw(self, run: torch.Tensor, mask_fn: MaskFunction) -> torch.Tensor:
        visible = torch.as_tensor(mask_fn(run[None].clone()))
        if tuple(visible.shape) != (1, *run.shape) or visible.dtype != torch.bool:
            raise ValueError(
                f"mask_fn must map (1, T, R) values to a (1, T, R) bool `visible` (True = visible); for a run of shape "
                f"{tuple(run.shape)} it returned {visible.dtype} of shape {tuple(visible.shape)}."
            )
        return visible[0].cpu()

    def _fit_spatial(self, runs: list[torch.Tensor]) -> None:
        self.spatial_ = SpatialConditionalMean(self.shrinkage, self.max_chunk_elements).fit(runs)
        rois = self.spatial_.num_rois
        if self.num_components > rois:
            raise ValueError(f"num_components={self.num_components} exceeds the {rois} ROIs; lower it.")
        self.components_ = torch.linalg.eigh(self.spatial_.covariance_).eigenvectors[:, rois - self.num_components :]

    def _bases(self, frames: torch.Tensor, visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-entry and per-frame feature bases of (B, T, R) frames, zero-padded by k frames on both sides:
        own (B, T + 2k, R, 3) = [m d, (1 - m) (c - mu), m] and shared (B, T + 2k, q + 1) = [PC scores, visible
        share]."""
        batch, length, rois = frames.shape
        deviation = torch.where(visible, frames - self.spatial_.mean_, torch.zeros((), dtype=torch.float64))
        spatial = self.spatial_.conditional_deviation(deviation.reshape(-1, rois), visible.reshape(-1, rois))
        spatial = spatial.reshape(batch, length, rois)
        shown = visible.to(torch.float64)
        own = torch.stack([deviation, torch.where(visible, 0.0, spatial), shown], dim=-1)
        shared = torch.cat([spatial @ self.components_, shown.mean(-1, keepdim=True)], dim=-1)
        pad = self.context
        return (torch.nn.functional.pad(own, (0, 0, 0, 0, pad, pad)), torch.nn.functional.pad(shared, (0, 0, pad, pad)))

    def _features(self, own, shared, batch, frame, roi) -> torch.Tensor:
        """(N, F) features of the entries (batch, frame, roi), three (N,) index tensors, from `_bases`' padded bases."""
        blocks = []
        for offset in range(2 * self.context + 1):  # padded frame index frame + offset = original frame + offset - k
            blocks += [own[batch, frame + offset, roi], shared[batch, frame + offset]]
        return torch.cat(blocks, dim=1)

    def _rows(self, runs, masks, generator) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Training rows, ROI block by ROI block: (rois, features (r, n, F), targets (r, n), counts (r,)), where
        n = `max_rows_per_roi`; a ROI hidden c < n times has its c rows first and zero rows after them."""
        rois, cap = runs[0].shape[1], self.max_rows_per_roi
        # one masked copy per run and draw, right-padded to the longest run with hidden frames (frames beyond a run
        # count as fully hidden, exactly as beyond a window at test time) that are not used as targets
        length = max(len(run) for run in runs)
        frames = torch.zeros(sum(len(draws) for draws in masks), length, rois, dtype=torch.float64)
        visible = torch.zeros(frames.shape, dtype=torch.bool)
        real = torch.zeros(frames.shape, dtype=torch.bool)
        copies = [(run, mask) for run, draws in zip(runs, masks) for mask in draws]
        for index, (run, mask) in enumerate(copies):
            frames[index, : len(run)], visible[index, : len(run)], real[index, : len(run)] = run, mask, True
        own, shared = self._bases(frames, visible)
        entries = torch.nonzero(real & ~visible)  # (N, 3): copy, frame, roi of every hidden entry
        # at most `cap` random hidden entries per ROI, grouped by ROI
        entries = entries[torch.randperm(len(entries), generator=generator)]
        entries = entries[torch.argsort(entries[:, 2], stable=True)]
        counts = torch.bincount(entries[:, 2], minlength=rois)
        starts = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
        slot = torch.arange(len(entries)) - starts[entries[:, 2]]
        entries, slot = entries[slot < cap], slot[slot < cap]
        counts = counts.clamp_max(cap)
        bounds = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).tolist()
        step = max(1, self.max_chunk_elements // (cap * self.num_features))
        for first in range(0, rois, step):
            block = slice(first, min(first + step, rois))
            chunk = entries[bounds[first] : bounds[block.stop]]
            copy, frame, roi = chunk.unbind(1)
            row = (roi - first) * cap + slot[bounds[first] : bounds[block.stop]]
            size = (block.stop - first) * cap
            features = torch.zeros(size, self.num_features, dtype=torch.float64)
            features.index_copy_(0, row, self._features(own, shared, copy, frame, roi))
            targets = torch.zeros(size, dtype=torch.float64)
            targets.index_copy_(0, row, frames[copy, frame, roi] - self.spatial_.mean_[roi])
            yield block, features.view(-1, cap, self.num_features), targets.view(-1, cap), counts[block].double()

    def _statistics(self, runs, masks, generator) -> dict[str, torch.Tensor]:
        """Per-ROI feature means and scales, target means, and the Gram matrix (R, F, F) and moments (R, F) of the
        standardised features and centred targets (zero rows contribute nothing to the raw sums)."""
        parts: dict[str, list[torch.Tensor]] = {}
        for _, features, targets, count in self._rows(runs, masks, generator):
            number = count.clamp_min(1)[:, None]
            mean = features.sum(1) / number  # (r, F)
            target_mean = targets.sum(1) / number[:, 0]
            gram = features.mT @ features - count[:, None, None] * mean[:, :, None] * mean[:, None, :]
            scale = (gram.diagonal(dim1=1, dim2=2).clamp_min(0) / number).sqrt()
            scale = torch.where(scale > 1e-9, scale, torch.ones((), dtype=torch.float64))
            moment = (features.mT @ targets[..., None])[..., 0] - count[:, None] * mean * target_mean[:, None]
            block = {
                "count": count, "mean": mean, "scale": scale, "target_mean": target_mean,
                "gram": gram / (scale[:, :, None] * scale[:, None, :]), "moment": moment / scale,
            }  # fmt: skip
            for name, value in block.items():
                parts.setdefault(name, []).append(value)
        return {name: torch.cat(values) for name, values in parts.items()}

    def _coefficients(self, statistics: dict[str, torch.Tensor], alphas: torch.Tensor) -> torch.Tensor:
        """Ridge coefficients on standardised features for penalties alphas (R, A): -> (R, A, F)."""
        with _single_thread():  # batched small eigendecompositions, see `_single_thread`
            eigenvalues, eigenvectors = torch.linalg.eigh(statistics["gram"])  # (R, F), (R, F, F)
        projected = (eigenvectors.mT @ statistics["moment"][..., None])[..., 0]  # (R, F)
        penalty = alphas * statistics["count"].clamp_min(1)[:, None]  # (R, A)
        shrunk = projected[:, None, :] / (eigenvalues[:, None, :] + penalty[..., None]).clamp_min(1e-12)  # (R, A, F)
        return shrunk @ eigenvectors.mT

    def _validation_errors(self, statistics, runs, masks, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Held-out squared error per ROI and penalty (R, A), and the held-out targets' sum of squares (R,)."""
        rois = len(statistics["count"])
        alphas = torch.tensor(self.alphas, dtype=torch.float64).expand(rois, -1)
        weights = self._coefficients(statistics, alphas) / statistics["scale"][:, None]  # (R, A, F) on raw features
        intercepts = statistics["target_mean"][:, None] - (weights * statistics["mean"][:, None]).sum(-1)  # (R, A)
        errors, totals = [], []
        for block, features, targets, count in self._rows(runs, masks, generator):
            used = (torch.arange(features.shape[1]) < count[:, None]).double()  # (r, n)
            predicted = features @ weights[block].mT + intercepts[block, None]  # (r, n, A)
            errors.append((((predicted - targets[..., None]) ** 2) * used[..., None]).sum(1))
            target_mean = targets.sum(1, keepdim=True) / count.clamp_min(1)[:, None]
            totals.append((((targets - target_mean) ** 2) * used).sum(1))
        return torch.cat(errors), torch.cat(totals)

    def _set_coefficients(self, statistics: dict[str, torch.Tensor], alphas: torch.Tensor) -> None:
        """Fold standardisation and intercept into raw-feature weights (R, F) and biases (R,)."""
        coefficients = self._coefficients(statistics, alphas[:, None])[:, 0] / statistics["scale"]  # (R, F)
        bias = self.spatial_.mean_ + statistics["target_mean"] - (coefficients * statistics["mean"]).sum(1)
        untrained = statistics["count"] == 0  # never hidden in training: keep the spatial estimate (c - mu)[t, r]
        if bool(untrained.any()):
            coefficients[untrained] = 0.0
            coefficients[untrained, self.context * (4 + self.num_components) + 1] = 1.0
            bias[untrained] = self.spatial_.mean_[untrained]
        self.weight_, self.bias_ = coefficients, bias


__all__ = ["DEFAULT_ALPHAS", "SpatialConditionalMean", "SpatioTemporalRidge", "ledoit_wolf_covariance"]
