"""Functional-connectivity features, the baselines every model number stands beside.

* `pearson_connectivity`: Fisher-z Pearson correlations between ROIs, upper triangle, one vector per run;
* `TangentConnectivity`: Ledoit-Wolf covariances projected to the tangent space at the (log-Euclidean) mean of the
  *training* runs' covariances, fitted on training runs only.

Both ignore ROIs that are constant in a run (no coverage): their correlations are 0. Controlled comparisons find
that linear models on these features are hard to beat on resting-state phenotypes (Dadi et al. 2019; Pervaiz et al.
2020), so a foundation model must be reported next to them on the same folds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..modeling_heads import masked_correlations
from ..preprocessing.robust_scaling import zscore_frames
from .spatial_predictors import ledoit_wolf_covariance


def pearson_connectivity(series: Sequence[np.ndarray]) -> np.ndarray:
    """(T, R) runs -> (N, R (R - 1) / 2) Fisher-z Pearson correlations (upper triangle), in float64 with the task
    heads' `masked_correlations` (the one implementation). Constant ROIs give 0."""
    return np.stack(
        [masked_correlations(torch.as_tensor(np.asarray(bold, np.float64))[None], None)[0].numpy() for bold in series]
    )


class TangentConnectivity:
    """Tangent-space connectivity (Varoquaux et al. 2010): `fit_transform` on training runs, `transform` any runs,
    to (N, R (R - 1) / 2) vectors (off-diagonal lower triangle, row by row, scaled by sqrt 2: nilearn's layout).

    Each run is z-scored per ROI and its covariance shrunk with the Ledoit-Wolf estimate (constant ROIs get the
    shrinkage target's variance). The reference point is the log-Euclidean mean of the training covariances,
    expm(mean logm C_i), the closed-form stand-in for the geometric mean nilearn iterates to; every covariance is
    whitened by it and mapped by the matrix logarithm. All eigendecompositions run batched in torch (float64).
    """

    def fit_transform(self, series: Sequence[np.ndarray]) -> np.ndarray:
        """Fit the reference point on `series` (the training runs) and return their tangent vectors."""
        covariances = _ledoit_wolf(series)
        mean_log = _matrix_function(covariances, torch.log).mean(dim=0)
        self.whitening_ = _matrix_function(mean_log[None], lambda w: torch.exp(-0.5 * w))[0]
        return self._vectors(covariances)

    def transform(self, series: Sequence[np.ndarray]) -> np.ndarray:
        return self._vectors(_ledoit_wolf(series))

    def _vectors(self, covariances: torch.Tensor) -> np.ndarray:
        tangent = _matrix_function(self.whitening_ @ covariances @ self.whitening_, torch.log)
        rows, cols = torch.tril_indices(tangent.shape[-1], tangent.shape[-1], offset=-1)  # nilearn's order
        return (np.sqrt(2) * tangent[:, rows, cols]).numpy()


def _matrix_function(matrices: torch.Tensor, function) -> torch.Tensor:
    """f(M) of symmetric positive-definite (N, R, R) matrices through their eigendecomposition."""
    values, vectors = torch.linalg.eigh(matrices)
    return (vectors * function(values.clamp_min(1e-12))[:, None, :]) @ vectors.transpose(-1, -2)


def _ledoit_wolf(series: Sequence[np.ndarray]) -> torch.Tensor:
    """(N, R, R) Ledoit-Wolf covariances of the per-ROI z-scored runs (scikit-learn's estimate)."""
    return torch.stack([ledoit_wolf_covariance(torch.as_tensor(zscore_frames(bold)))[1] for bold in series])


__all__ = ["TangentConnectivity", "pearson_connectivity"]
