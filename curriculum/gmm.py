"""Small, fast Gaussian-mixture fitting for the GMM teachers (ALP-GMM, Covar-GMM).

scikit-learn's ``GaussianMixture`` costs ~20 ms per fit on the few hundred low-dimensional points a teacher
fits, mostly in per-call validation and k-means initialisation; the reference teachers fit 9 of them every
250 episodes, which alone is ~0.8 ms per episode. This module runs the same EM (full covariances, k-means++
seeding, ``reg_covar`` added to the diagonal, stop when the mean log-likelihood gains less than ``tol``)
vectorised over components, and selects the number of components by an information criterion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
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
    """Greedy k-means++ seeding (as scikit-learn's): indices of ``k`` well-spread points.

    Each new centre is the best of ``2 + log(k)`` candidates drawn in proportion to their squared distance to
    the centres so far, which avoids most seedings with two centres in one cluster.
    """
    n = len(x)
    trials = 2 + int(np.log(k))
    chosen = [int(rng.integers(n))]
    d2 = ((x - x[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        cum = np.cumsum(d2)
        if cum[-1] <= 0:
            candidates = rng.integers(n, size=trials)
        else:
            candidates = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1], side="right"), n - 1)
        cand_d2 = np.minimum(d2, ((x[None, :, :] - x[candidates][:, None, :]) ** 2).sum(axis=2))  # (trials, n)
        best = int(np.argmin(cand_d2.sum(axis=1)))
        chosen.append(int(candidates[best]))
        d2 = cand_d2[best]
    return np.asarray(chosen)


def _kmeans_labels(x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 10) -> np.ndarray:
    """Cluster labels from k-means++ seeding refined by Lloyd iterations (EM's starting assignment).

    Seeding alone often starts EM in a poor optimum (two seeds in one cluster); a few Lloyd steps fix most.
    """
    centres = x[_kmeans_pp(x, k, rng)]
    labels = np.full(len(x), -1)
    sq_norms = (x * x).sum(axis=1)
    for _ in range(max_iter):
        d2 = sq_norms[:, None] - 2.0 * x @ centres.T + (centres * centres).sum(axis=1)
        new = d2.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        onehot = (labels[None, :] == np.arange(k)[:, None]).astype(np.float64)  # (k, n)
        counts = onehot.sum(axis=1)
        centres = np.where(counts[:, None] > 0, (onehot @ x) / np.maximum(counts, 1)[:, None], centres)
    return labels


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
    whole model selection costs about as many numpy calls as a single fit. Each mixture starts from a
    k-means clustering (k-means++ seeding, Lloyd steps), and stops once its mean log-likelihood per point improves by less
    than ``tol``.

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
    # Centre the data: second moments minus squared means then lose no precision.
    centre = x.mean(axis=0)
    xc = x - centre
    xt = np.ascontiguousarray(xc.T)
    outer = (xc[:, :, None] * xc[:, None, :]).reshape(n, d * d)
    eye = np.eye(d) * reg_covar
    resp = np.zeros((sum(ks), n))
    for start, k in zip(np.cumsum([0, *ks[:-1]]), ks, strict=True):
        resp[start + _kmeans_labels(xc, k, rng), np.arange(n)] = 1.0
    results: list[GaussianMixture | None] = [None] * len(ks)
    active = list(range(len(ks)))  # mixtures still iterating, in bank order
    prev = np.full(len(ks), -np.inf)
    for iteration in range(max_iter):
        sizes = [ks[i] for i in active]
        starts = np.cumsum([0, *sizes[:-1]])
        owner = np.repeat(np.arange(len(active)), sizes)  # mixture of each bank row
        blocks = (owner[None, :] == np.arange(len(active))[:, None]).astype(np.float64)  # (m, rows) indicator
        # M step: weighted first and second moments, one matrix product each.
        nk = resp.sum(axis=1) + 10 * np.finfo(float).eps
        means = (resp @ xc) / nk[:, None]
        second = (resp @ outer).reshape(len(nk), d, d) / nk[:, None, None]
        covs = second - means[:, :, None] * means[:, None, :] + eye
        weights = nk / n
        # E step, normalised within each mixture's block of rows. Per-block sums are one product with the
        # block indicator; one shared per-point maximum keeps exp() in range unless a whole block lies
        # ~700 nats below the best row, in which case the exact per-block maximum is used.
        log_p = _log_gauss(xt, means, covs) + np.log(weights)[:, None]  # (rows, n)
        top = log_p.max(axis=0)
        summed = blocks @ np.exp(log_p - top)  # (m, n)
        if summed.min() > 1e-280:
            log_norm = top + np.log(summed)
        else:
            block_top = np.maximum.reduceat(log_p, starts, axis=0)
            log_norm = block_top + np.log(np.add.reduceat(np.exp(log_p - block_top[owner]), starts, axis=0))
        resp = np.exp(log_p - blocks.T @ log_norm)
        ll = log_norm.sum(axis=1)
        # A mixture stops on its own once its mean log-likelihood per point settles (as scikit-learn's);
        # the bank then shrinks to the mixtures still moving.
        done = np.abs(ll / n - prev[active]) < tol
        if iteration == max_iter - 1:
            done[:] = True
        for j in np.flatnonzero(done):
            rows = slice(starts[j], starts[j] + sizes[j])
            results[active[j]] = GaussianMixture(
                weights=weights[rows], means=means[rows] + centre, covariances=covs[rows], log_likelihood=float(ll[j])
            )
        prev[active] = ll / n
        if done.all():
            break
        if done.any():
            resp = resp[~done[owner]]
            active = [a for a, stop in zip(active, done, strict=True) if not stop]
    return [r for r in results if r is not None]


def fit_best_gmm(
    x: np.ndarray,
    ks: Sequence[int],
    rng: np.random.Generator,
    criterion: str = "aic",
    **fit_kwargs: Any,
) -> GaussianMixture:
    """Fit one mixture per number of components in ``ks`` (those <= len(x)) and keep the best by ``criterion``."""
    usable = [k for k in ks if k <= len(x)]
    if not usable:
        raise ValueError(f"no component count in {list(ks)} fits {len(x)} points")
    candidates = fit_gmms(x, usable, rng, **fit_kwargs)
    scores = [g.criterion(criterion, len(x)) for g in candidates]
    return candidates[int(np.argmin(scores))]
