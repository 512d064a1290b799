"""SPDL's constrained step against an independent solve, on fixed random buffers at the paper's point-mass settings.

Usage: python bench/spdl_step.py [--buffers 10] [--episodes 50]

For each buffer (contexts from a distribution near the paper's initial one, values a smooth function of the
context plus noise), prints the objective SPDL's step reaches (curriculum.spdl.spdl_step), that of an
independent solve (SLSQP with finite differences from 20 starts, the objective and KL written with covariance
matrices and scipy.stats), the relative gap and the step's KL(p_old || p). Then the same steps under 1 and 2
BLAS threads, which must give the same bits.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.stats import multivariate_normal
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curriculum.spdl import gaussian_log_pdf, pack, spdl_step, unpack

TARGET_MEAN, TARGET_STD = np.array([2.5, 0.5, 0.0]), np.array([0.004, 0.00375, 0.002])
MAX_KL, ZETA = 0.05, 1.6


def buffer(seed: int, episodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Contexts, values, the old distribution (mean, L) and alpha of one fixed random buffer."""
    rng = np.random.default_rng(seed)
    mean = np.array([0.0, 4.25, 2.0]) + rng.normal(0, [0.5, 0.5, 0.3])
    chol = np.diag([2.0, 1.875, 1.0] * rng.uniform(0.3, 1.0, 3))
    chol[np.tril_indices(3, -1)] = rng.normal(0, 0.1, 3)
    contexts = mean + rng.standard_normal((episodes, 3)) @ chol.T
    goal = rng.uniform([-4, 0.5, 0], [4, 8, 4])
    values = 5 * np.exp(-np.sum(((contexts - goal) / [4, 3, 2]) ** 2, axis=1)) + rng.normal(0, 0.3, episodes)
    kl_target = kl_cov(mean, chol @ chol.T, TARGET_MEAN, np.diag(TARGET_STD**2))
    return contexts, values, mean, chol, min(ZETA * max(values.mean(), 0) / kl_target, 1e5)


def kl_cov(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """KL(N_a || N_b) from covariance matrices."""
    inv_b = np.linalg.inv(cov_b)
    diff = mean_b - mean_a
    logdet = np.linalg.slogdet(cov_b)[1] - np.linalg.slogdet(cov_a)[1]
    return 0.5 * (np.trace(inv_b @ cov_a) + diff @ inv_b @ diff - len(mean_a) + logdet)


def independent(contexts, values, mean, chol, alpha, starts: int = 20) -> tuple[float, float]:
    """The best objective an independent solver finds (and its KL), from ``starts`` starts (``tests/test_fidelity.py``
    checks SPDL's step against it too)."""
    old_cov, old_log_p = chol @ chol.T, multivariate_normal(mean, chol @ chol.T).logpdf(contexts)
    target_cov = np.diag(TARGET_STD**2)

    def objective(theta: np.ndarray) -> float:
        m, L = unpack(theta, 3)
        if not np.isfinite(L).all():
            return -1e6
        ratio = np.exp(multivariate_normal(m, L @ L.T, allow_singular=True).logpdf(contexts) - old_log_p)
        return float(np.mean(ratio * values)) - alpha * kl_cov(m, L @ L.T, TARGET_MEAN, target_cov)

    def region(theta: np.ndarray) -> float:
        m, L = unpack(theta, 3)
        return MAX_KL - kl_cov(mean, old_cov, m, L @ L.T)

    rng = np.random.default_rng(0)
    old = pack(mean, chol)
    best, best_kl = objective(old), 0.0
    for k in range(starts):
        start = old + (0 if k == 0 else rng.normal(0, 0.05, old.shape))
        if region(start) < 0:
            continue
        result = minimize(
            lambda t: -objective(t),
            start,
            method="SLSQP",
            bounds=[(-20, 20)] * 3 + [(-8, 4)] * 3 + [(-20, 20)] * 3,
            constraints=[{"type": "ineq", "fun": region}],
            options={"ftol": 1e-13, "maxiter": 2000},
        )
        if region(result.x) >= -1e-9 and -result.fun > best:
            best, best_kl = -result.fun, MAX_KL - region(result.x)
    return best, best_kl


def reached(contexts, values, mean, chol, alpha) -> tuple[float, float, np.ndarray]:
    theta = spdl_step(contexts, values, mean, chol, TARGET_MEAN, np.diag(TARGET_STD), alpha, MAX_KL)
    m, L = unpack(theta, 3)
    ratio = np.exp(gaussian_log_pdf(contexts, m, L) - gaussian_log_pdf(contexts, mean, chol))
    value = float(np.mean(ratio * values)) - alpha * kl_cov(m, L @ L.T, TARGET_MEAN, np.diag(TARGET_STD**2))
    return value, kl_cov(mean, chol @ chol.T, m, L @ L.T), theta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buffers", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("buffer  ours        independent  gap      KL step")
    worst, same = 0.0, True
    for seed in range(args.buffers):
        data = buffer(seed, args.episodes)
        ours, kl, theta = reached(*data)
        best, _ = independent(*data)
        gap = (best - ours) / abs(best)
        worst = max(worst, gap)
        for threads in (1, 2):
            with threadpool_limits(threads):
                same &= bool(np.array_equal(reached(*data)[2], theta))
        print(f"{seed:6d}  {ours:10.6f}  {best:11.6f}  {100 * gap:6.3f}%  {kl:.5f}")
    print(f"worst gap {100 * worst:.3f}%; same bits on 1 and 2 threads: {same}")


if __name__ == "__main__":
    main()
