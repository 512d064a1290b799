"""Small, fast Gaussian-mixture fitting for the GMM teachers (ALP-GMM, Covar-GMM).

scikit-learn's ``GaussianMixture`` costs ~20 ms per fit on the few hundred low-dimensional points a teacher
fits, mostly in per-call validation and k-means initialisation; the reference teachers fit 9 of them every
250 episodes, which alone is ~0.8 ms per episode. This module runs the same EM (full covariances, k-means++
seeding, ``reg_covar`` added to the diagonal, stop when the mean log-likelihood gains less than ``tol``)
vectorised over components, and selects the number of components by an information criterion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass
class GaussianMixture:
    """A fitted mixture: ``weights`` (k,), ``means`` (k, d), ``covariances`` (k, d, d)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    log_likelihood: float  # total over the fitted points
    _chol: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def n_parameters(self) -> int:
        k, d = self.means.shape
        return k * d * (d + 1) // 2 + k * d + k - 1

    def criterion(self, name: str, n_points: int) -> float:
        """Information criterion (lower is better): ``aic``, ``bic`` or ``aicc``."""
        p = self.n_parameters()
        if name == "aic":
            return -2.0 * self.log_likelihood + 2.0 * p
        if name == "bic":
            return -2.0 * self.log_likelihood + p * np.log(n_points)
        if name == "aicc":
            denom = n_points - p - 1
            correction = 2.0 * p * (p + 1) / denom if denom > 0 else np.inf
            return -2.0 * self.log_likelihood + 2.0 * p + correction
        raise ValueError(f"unknown criterion '{name}'; valid: aic, bic, aicc")

    def sample_component(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """One draw from component ``index``."""
        if self._chol is None:
            self._chol = np.linalg.cholesky(self.covariances)
        return self.means[index] + self._chol[index] @ rng.standard_normal(self.means.shape[1])


def _log_gauss(xt: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """log N(x_n | mean_k, cov_k) as a (k, n) array, from the transposed points ``xt`` (d, n).

    Uses the precision Cholesky factors P_k (P_k P_k^T = cov_k^-1) stacked, so that the whole Mahalanobis
    computation is one (k*d, d) @ (d, n) product instead of k tiny batched solves; the (k, n) layout keeps
    every reduction on contiguous rows (numpy reduces short strided axes slowly).
    """
    k, d = means.shape
    chol = np.linalg.cholesky(covs)  # (k, d, d), lower
    prec_chol_t = np.linalg.inv(chol)  # (k, d, d): row block k is P_k^T
    offset = np.einsum("kij,kj->ki", prec_chol_t, means).reshape(k * d, 1)
    y = prec_chol_t.reshape(k * d, d) @ xt - offset  # (k*d, n)
    maha = (y * y).reshape(k, d, -1).sum(axis=1)
    log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)  # (k,)
    return -0.5 * (maha + (log_det + d * _LOG_2PI)[:, None])


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: indices of ``k`` well-spread points."""
    n = len(x)
    chosen = [int(rng.integers(n))]
    d2 = ((x - x[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        cum = np.cumsum(d2)
        if cum[-1] <= 0:
            idx = int(rng.integers(n))
        else:
            idx = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n - 1)
        chosen.append(idx)
        d2 = np.minimum(d2, ((x - x[idx]) ** 2).sum(axis=1))
    return np.asarray(chosen)


def fit_gmms(
    x: np.ndarray,
    ks: Sequence[int],
    rng: np.random.Generator,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
) -> list[GaussianMixture]:
    """Fit one full-covariance mixture per component count in ``ks`` to the rows of ``x``, by EM.

    All mixtures are fitted together as one stacked bank of components (normalised per mixture), so a
    whole model selection costs about as many numpy calls as a single fit. Each mixture is seeded by
    k-means++ and a hard assignment; iterations stop once every mixture's mean log-likelihood per point
    improves by less than ``tol``.

    :param x: (n, d) points
    :param ks: component counts, each <= n
    :param rng: source of the k-means++ seeding
    :param max_iter: EM iterations at most
    :param tol: convergence threshold on the mean log-likelihood per point
    :param reg_covar: added to every covariance diagonal (keeps them positive definite)
    :return: one mixture per entry of ``ks``, in order
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or max(ks) > n:
        raise ValueError(f"component counts {ks} must be in [1, {n}] for {n} points")
    starts = np.cumsum([0, *ks[:-1]])  # first bank row of each mixture
    owner = np.repeat(np.arange(len(ks)), ks)  # mixture of each bank row
    blocks = (owner[None, :] == np.arange(len(ks))[:, None]).astype(np.float64)  # (m, total) indicator
    total = sum(ks)
    # Centre the data: second moments minus squared means then lose no precision.
    centre = x.mean(axis=0)
    xc = x - centre
    xt = np.ascontiguousarray(xc.T)
    outer = (xc[:, :, None] * xc[:, None, :]).reshape(n, d * d)
    eye = np.eye(d) * reg_covar
    resp = np.zeros((total, n))
    for start, k in zip(starts, ks, strict=True):
        seeds = xc[_kmeans_pp(xc, k, rng)]
        labels = ((xc[:, None, :] - seeds[None]) ** 2).sum(-1).argmin(axis=1)
        resp[start + labels, np.arange(n)] = 1.0
    prev = np.full(len(ks), -np.inf)
    for _ in range(max_iter):
        # M step: weighted first and second moments, one matrix product each.
        nk = resp.sum(axis=1) + 10 * np.finfo(float).eps  # (total,)
        means = (resp @ xc) / nk[:, None]
        second = (resp @ outer).reshape(total, d, d) / nk[:, None, None]
        covs = second - means[:, :, None] * means[:, None, :] + eye
        weights = nk / n
        # E step, normalised within each mixture's block of rows. Per-block sums are one product with the
        # block indicator; one shared per-point maximum keeps exp() in range unless a whole block lies
        # ~700 nats below the best row, in which case the exact per-block maximum is used.
        log_p = _log_gauss(xt, means, covs) + np.log(weights)[:, None]  # (total, n)
        top = log_p.max(axis=0)
        summed = blocks @ np.exp(log_p - top)  # (m, n)
        if summed.min() > 1e-280:
            log_norm = top + np.log(summed)
        else:
            block_top = np.maximum.reduceat(log_p, starts, axis=0)
            log_norm = block_top + np.log(np.add.reduceat(np.exp(log_p - block_top[owner]), starts, axis=0))
        resp = np.exp(log_p - blocks.T @ log_norm)
        ll = log_norm.sum(axis=1)
        mean_ll = ll / n
        if np.all(np.abs(mean_ll - prev) < tol):
            break
        prev = mean_ll
    return [
        GaussianMixture(
            weights=weights[s : s + k],
            means=means[s : s + k] + centre,
            covariances=covs[s : s + k],
            log_likelihood=float(ll[i]),
        )
        for i, (s, k) in enumerate(zip(starts, ks, strict=True))
    ]


def fit_best_gmm(
    x: np.ndarray,
    ks: Sequence[int],
    rng: np.random.Generator,
    criterion: str = "aic",
    **fit_kwargs: float,
) -> GaussianMixture:
    """Fit one mixture per number of components in ``ks`` (those <= len(x)) and keep the best by ``criterion``."""
    usable = [k for k in ks if k <= len(x)]
    if not usable:
        raise ValueError(f"no component count in {list(ks)} fits {len(x)} points")
    candidates = fit_gmms(x, usable, rng, **fit_kwargs)
    scores = [g.criterion(criterion, len(x)) for g in candidates]
    return candidates[int(np.argmin(scores))]
