"""`LinearAutoregression`: a ridge vector autoregression (VAR) of the ROI vector, run forward and backward in time,
that fills hidden frames in time order from the already-filled past; a masked-reconstruction predictor fitted on
training subjects (conventions of `fit` / `fill` as in `spatial_predictors`).

Why: at short TR, linear autoregressive models of the whole-brain ROI vector predict resting-state BOLD as well as
nonlinear ones (Nozari et al. 2024, Nature Biomedical Engineering, on HCP at TR 0.72 s), so a VAR is the linear
anchor a model that predicts across time has to beat.

Model, forward in time (the backward model is the same fitted on the time-reversed runs), with d_t = x_t - mu:

    d_t = sum_{k=1..q} A_k d_{t-k} + e_t,   e_t ~ N(0, S_q),

x_t (R,) the frame, mu (R,) the mean of all training frames, A_k (R, R) fitted by ridge regression (a penalty
`alpha` * n on the coefficients, n the number of frames regressed, on robust-scaled or z-scored runs) on every frame
t >= p of every training run, and S_q the residual covariance. Models of every order q = 0..p come from the same
sums (q = 0: the covariance of the frames, mean prediction).

`fill(values, visible)`, (B, T, R) each:

1. Forward pass, t = 0..T-1: a frame with hidden entries is predicted by the order-q model, q = min(t, p), from the
   filled frames t - q .. t - 1 (visible values, earlier fills where hidden); its hidden ROIs take the Gaussian
   conditional mean of the frame given its visible ROIs under S_q (the prediction itself when the whole frame is
   hidden). Forecast masks thus get iterated multi-step predictions; a frame without past gets the mean.
2. Backward pass: the same from the end of the window with the backward model (when `bidirectional`).
3. Per hidden entry of ROI r at frame t, the two fills are blended with weights d_b / (d_f + d_b) (forward) and
   d_f / (d_f + d_b) (backward), d_f the frames since ROI r was last visible and d_b the frames until it is next
   visible: a span with visible frames on one side only (forecast masks, spans at the window's start) takes that
   side's fill alone.

`tune_linear_autoregression` chooses p and alpha on masked windows of subjects other than the scored ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .spatial_predictors import SeriesList, _as_runs, _check_fill_inputs, _single_thread

#: Orders and ridge penalties `tune_linear_autoregression` tries by default.
DEFAULT_ORDERS = (1, 2, 4, 8)
DEFAULT_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1)
#: The order and penalty used when no subject is left to choose them on (the choice on HCP validation subjects at
#: TR 0.72 s for per-ROI and whole-frame masks, docs/representations.md).
DEFAULT_ORDER = 4
DEFAULT_ALPHA = 1e-3
#: Per order q = 0..p: coefficients (q R, R), lag 1 first, and the precision (R, R) of the residuals.
OrderModels = list[tuple[torch.Tensor, torch.Tensor]]


class LinearAutoregression:
    """Ridge VAR(`order`) forward and backward in time, filling hidden entries as the module docstring describes."""

    def __init__(self, order: int = DEFAULT_ORDER, alpha: float = DEFAULT_ALPHA, bidirectional: bool = True):
        if order < 1 or alpha < 0:
            raise ValueError(f"order must be >= 1 and alpha >= 0, got order={order}, alpha={alpha}.")
        self.order, self.alpha, self.bidirectional = order, float(alpha), bidirectional
        self.mean_: torch.Tensor | None = None  # (R,)
        self.models_: dict[str, OrderModels] = {}  # per direction ("forward", "backward")
        self._sums: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def num_rois(self) -> int | None:
        return None if self.mean_ is None else int(self.mean_.shape[0])

    def coefficients(self, direction: str = "forward") -> torch.Tensor:
        """The fitted A_1..A_p of `direction` ("forward" or "backward") as (p, R, R): d_t ~ sum_k A_k d_{t-k}."""
        weights = self.models_[direction][self.order][0]  # (p R, R): row block k - 1 maps d_{t-k} to d_t
        return weights.view(self.order, self.num_rois, self.num_rois).mT

    def fit(self, series_list: SeriesList) -> LinearAutoregression:
        """Fit on training runs: a list of (T_i, R) arrays (a run of at most `order` frames adds to the mean only)."""
        runs = _as_runs(series_list)
        if not any(len(run) > self.order for run in runs):
            raise ValueError(f"no training run is longer than order={self.order} frames.")
        self.mean_ = torch.cat(runs).mean(0)
        deviations = [run - self.mean_ for run in runs if len(run) > self.order]
        self._sums = {
            "forward": _lagged_sums(deviations, self.order),
            "backward": _lagged_sums([run.flip(0) for run in deviations], self.order),
        }
        return self.set_hyperparameters(self.order, self.alpha)

    def set_hyperparameters(self, order: int, alpha: float) -> LinearAutoregression:
        """Refit at a lower `order` (at most the one fitted) or another `alpha` from the sums of `fit`."""
        if not self._sums:
            raise RuntimeError("LinearAutoregression is not fitted: call `.fit(training_runs)` first.")
        fitted = self._sums["forward"]["gram"].shape[0] // len(self.mean_)
        if not 1 <= order <= fitted or alpha < 0:
            raise ValueError(f"order must be in 1..{fitted} (the order fitted) and alpha >= 0; got {order}, {alpha}.")
        self.order, self.alpha = order, float(alpha)
        self.models_ = {name: _solve(sums, order, self.alpha) for name, sums in self._sums.items()}
        return self

    def fill(self, values: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """(B, T, R) values and bool visibility -> (B, T, R): hidden entries predicted, visible ones passed through."""
        _check_fill_inputs(values, visible, self.num_rois, type(self).__name__)
        seen = visible.cpu()
        deviations = torch.where(seen, values.detach().to("cpu", torch.float64) - self.mean_, 0.0)
        forward = self._pass(self.models_["forward"], deviations, seen)
        if self.bidirectional:
            backward = self._pass(self.models_["backward"], deviations.flip(1), seen.flip(1)).flip(1)
            weight = _forward_weight(seen)
            forward = weight * forward + (1 - weight) * backward
        filled = (forward + self.mean_).to(device=values.device, dtype=values.dtype)
        return torch.where(visible, values, filled)

    @staticmethod
    def _pass(models: OrderModels, deviations: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """One pass in time order over (B, T, R) deviations (0 where hidden): every frame with hidden entries filled
        from the filled frames before it."""
        filled = deviations.clone()
        order = len(models) - 1
        pending = (~visible).any(-1)  # (B, T): frames with something to fill
        for frame in range(filled.shape[1]):
            rows = torch.nonzero(pending[:, frame])[:, 0]
            if not len(rows):
                continue
            lags = min(frame, order)
            weights, precision = models[lags]
            prediction = torch.zeros_like(filled[rows, frame])
            if lags:
                past = filled[rows, frame - lags : frame].flip(1).reshape(len(rows), -1)  # lag 1 first
                prediction = past @ weights
            seen = visible[rows, frame]
            residual = torch.where(seen, filled[rows, frame] - prediction, 0.0)
            estimate = prediction + _conditional_deviation(precision, residual, seen)
            filled[rows, frame] = torch.where(seen, filled[rows, frame], estimate)
        return filled


def _lagged_sums(runs: list[torch.Tensor], order: int) -> dict[str, torch.Tensor]:
    """Sums of the lagged regression over frames t >= `order` of (T_i, R) deviation runs: the Gram matrix of the
    lags (p R, p R), lag 1 first, their cross products with the frame (p R, R), the frame's (R, R) and the count."""
    rois = runs[0].shape[1]
    gram = torch.zeros(order * rois, order * rois, dtype=torch.float64)
    cross = torch.zeros(order * rois, rois, dtype=torch.float64)
    frames = torch.zeros(rois, rois, dtype=torch.float64)
    count = 0
    for run in runs:
        target = run[order:]
        lags = torch.cat([run[order - k : len(run) - k] for k in range(1, order + 1)], dim=1)
        gram += lags.T @ lags
        cross += lags.T @ target
        frames += target.T @ target
        count += len(target)
    return {"gram": gram, "cross": cross, "frames": frames, "count": torch.tensor(float(count))}


def _solve(sums: dict[str, torch.Tensor], order: int, alpha: float) -> OrderModels:
    """Ridge coefficients and residual precisions of every order 0..`order` from `_lagged_sums`."""
    rois, count = sums["frames"].shape[0], sums["count"]
    models = []
    for lags in range(order + 1):
        size = lags * rois
        gram, cross = sums["gram"][:size, :size], sums["cross"][:size]
        penalty = alpha * count * torch.eye(size, dtype=torch.float64)
        weights = torch.linalg.solve(gram + penalty, cross) if size else cross
        residual = sums["frames"] - cross.T @ weights - weights.T @ cross + weights.T @ gram @ weights
        covariance = (residual + residual.T) / (2 * count)
        covariance = covariance + 1e-8 * covariance.diagonal().mean() * torch.eye(rois, dtype=torch.float64)
        models.append((weights, torch.cholesky_inverse(torch.linalg.cholesky(covariance))))
    return models


def _conditional_deviation(precision: torch.Tensor, deviation: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """Gaussian conditional mean of the hidden entries of (N, R) deviations (0 where hidden) given the visible ones,
    under the precision P (R, R): -P_HH^-1 P_HV d_V on the hidden entries, 0 on the visible ones.

    Each row solves M y = b with M = P on H x H and the identity elsewhere, b = -(d P) on H and 0 elsewhere, so one
    batched (N, R, R) Cholesky factorisation serves every visibility pattern (a fully hidden row gets 0).
    """
    hidden = ~visible
    block = hidden[:, :, None] & hidden[:, None, :]
    system = torch.where(block, precision, torch.eye(precision.shape[0], dtype=torch.float64))
    right = torch.where(hidden, -(deviation @ precision), 0.0)[..., None]
    with _single_thread():  # batched small Cholesky factorisations, see `_single_thread`
        return torch.cholesky_solve(right, torch.linalg.cholesky(system))[..., 0]


def _forward_weight(visible: torch.Tensor) -> torch.Tensor:
    """(B, T, R) bool -> (B, T, R) float64 weight of the forward fill: d_b / (d_f + d_b), 1 or 0 when one side has
    no visible frame of the ROI, 1/2 when neither has."""
    frames = torch.arange(visible.shape[1], dtype=torch.float64)[None, :, None]
    infinity = torch.tensor(float("inf"), dtype=torch.float64)
    last = torch.where(visible, frames, -infinity).cummax(1).values  # last visible frame at or before t
    following = torch.where(visible, frames, infinity).flip(1).cummin(1).values.flip(1)  # next at or after t
    since, until = frames - last, following - frames
    weight = until / (since + until)
    weight = torch.where(torch.isinf(since), 0.0, torch.where(torch.isinf(until), 1.0, weight))
    return torch.where(torch.isinf(since) & torch.isinf(until), 0.5, weight)


def pooled_r2(prediction: torch.Tensor, values: torch.Tensor, hidden: torch.Tensor) -> float:
    """1 - SSE / SST over the hidden entries, SST around their mean."""
    target = values[hidden].double()
    error = ((prediction[hidden].double() - target) ** 2).sum()
    return float(1 - error / ((target - target.mean()) ** 2).sum().clamp_min(1e-12))


def tune_linear_autoregression(
    series_list: SeriesList,
    values: torch.Tensor,
    visible: torch.Tensor,
    orders: Sequence[int] = DEFAULT_ORDERS,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    max_windows: int = 8,
) -> tuple[LinearAutoregression, dict]:
    """Fit on the training runs `series_list` and choose the order and penalty with the highest pooled R^2 on the
    hidden entries of (B, T, R) `values` under `visible` (windows of subjects never scored, e.g. the validation
    subjects); at most `max_windows` of them, evenly spaced over the B given (every fill of the grid costs time).

    Returns:
        The model refitted with the chosen values, and `{"order", "alpha", "validation_r2", "windows", "grid":
        [{"order", "alpha", "validation_r2"}, ...]}` (`windows`: how many windows scored the grid).
    """
    if not orders or not alphas or max_windows < 1 or not len(values):
        raise ValueError(
            f"orders and alphas must be non-empty, max_windows >= 1 and values hold a window; got {orders}, {alphas}, "
            f"{max_windows}, {len(values)} windows."
        )
    model = LinearAutoregression(order=max(orders)).fit(series_list)
    kept = torch.linspace(0, len(values) - 1, min(max_windows, len(values))).round().long().unique()
    values, visible = values[kept], visible[kept]
    hidden = ~visible
    grid = []
    for order in sorted(orders):
        for alpha in alphas:
            score = pooled_r2(model.set_hyperparameters(order, alpha).fill(values, visible), values, hidden)
            grid.append({"order": order, "alpha": float(alpha), "validation_r2": score})
    best = max(grid, key=lambda cell: cell["validation_r2"])
    model.set_hyperparameters(best["order"], best["alpha"])
    return model, {**best, "windows": len(values), "grid": grid}


__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_ALPHAS",
    "DEFAULT_ORDER",
    "DEFAULT_ORDERS",
    "LinearAutoregression",
    "pooled_r2",
    "tune_linear_autoregression",
]
