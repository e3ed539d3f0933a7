"""Masked-reconstruction baselines fitted on training subjects, the bars above the trivial fills.

`mnemodyn_hf.reconstruction_predictors` fills hidden entries from the same ROI's visible frames of the same window;
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
from collections.abc import Callable, Sequence

import numpy as np
import torch

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
    runs = [
        torch.as_tensor(np.asarray(run) if not isinstance(run, torch.Tensor) else run).to(torch.float64).cpu()
        for run in series_list
    ]
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
        self.shrinkage_ = shrinkage
        return self._set_moments(mean, covariance)

    @classmethod
    def from_moments(cls, mean: torch.Tensor, covariance: torch.Tensor) -> SpatialConditionalMean:
        """A fitted predictor with a given mean (R,) and positive-definite covariance (R, R), float64."""
        return cls()._set_moments(mean, covariance)

    def _set_moments(self, mean: torch.Tensor, covariance: torch.Tensor) -> SpatialConditionalMean:
        self.mean_ = torch.as_tensor(mean, dtype=torch.float64)
        self.covariance_ = torch.as_tensor(covariance, dtype=torch.float64)
        self.precision_ = torch.cholesky_inverse(torch.linalg.cholesky(self.covariance_))
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
                sorted_centred[rows],
                patterns[pattern_order[first:last]],
                frame_rank[rows] - first,
                precision_side=group_key > rois,
                k=group_key % (rois + 1),
            )
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


__all__ = ["MaskFunction", "SeriesList", "SpatialConditionalMean", "ledoit_wolf_covariance"]
