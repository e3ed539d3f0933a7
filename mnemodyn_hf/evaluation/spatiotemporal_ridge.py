"""`SpatioTemporalRidge`: the spatial conditional mean refined by per-ROI ridge models on neighbouring frames, a
masked-reconstruction baseline fitted on training subjects (see `fitted_reconstruction_baselines` for the
conventions of `fit` / `fill`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .spatial_predictors import (
    MaskFunction,
    SeriesList,
    SpatialConditionalMean,
    _as_runs,
    _check_fill_inputs,
    _single_thread,
)

#: Ridge penalties tried by `SpatioTemporalRidge`, per training row on standardised features (a penalty `a` adds
#: `a * n` to the diagonal of the Gram matrix of `n` rows).
DEFAULT_ALPHAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)


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
                "count": count,
                "mean": mean,
                "scale": scale,
                "target_mean": target_mean,
                "gram": gram / (scale[:, :, None] * scale[:, None, :]),
                "moment": moment / scale,
            }
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


__all__ = ["DEFAULT_ALPHAS", "SpatioTemporalRidge"]
