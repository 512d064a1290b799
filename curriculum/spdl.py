"""SPDL: Self-Paced Deep RL (Klink et al., NeurIPS 2020), as TeachMyAgent ports it, solved with scipy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize

from curriculum.base import Feedback, Teacher
from curriculum.spaces import BoxTaskSpace, Task, TaskSpace


def gaussian_kl(mean_a: np.ndarray, chol_a: np.ndarray, mean_b: np.ndarray, chol_b: np.ndarray) -> float:
    """KL(N(mean_a, La La^T) || N(mean_b, Lb Lb^T)) for lower-triangular Cholesky factors."""
    d = len(mean_a)
    inv_b = np.linalg.solve(chol_b, np.eye(d))  # Lb^-1
    m = inv_b @ chol_a
    diff = inv_b @ (mean_b - mean_a)
    log_det = 2.0 * (np.log(np.abs(np.diag(chol_b))).sum() - np.log(np.abs(np.diag(chol_a))).sum())
    return 0.5 * (float(np.sum(m * m)) + float(diff @ diff) - d + log_det)


def gaussian_log_pdf(x: np.ndarray, mean: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """Log-density of the rows of ``x`` under N(mean, L L^T)."""
    z = np.linalg.solve(chol, (x - mean).T)  # L^-1 (x - mean)
    d = len(mean)
    return -0.5 * np.sum(z * z, axis=0) - np.log(np.abs(np.diag(chol))).sum() - 0.5 * d * math.log(2 * math.pi)


class SpdlTeacher(Teacher):
    """SPDL: a Gaussian task distribution moved toward the target as fast as the student's values allow.

    Each finished episode adds (task, the student's value of its first state, ``initial_value``) to a buffer of
    ``buffer_size``. Every ``update_frequency`` environment steps after the first ``update_offset``, the
    distribution p = N(mean, L L^T) solves

        max_p  mean_i[ p(c_i) / p_old(c_i) * V_i ] - alpha * KL(p || target)   s.t.  KL(p_old || p) <= max_kl

    over the buffer's episodes (which it then empties), with alpha = 0 for the first ``alpha_offset`` updates and
    then ``zeta * max(mean V, 0) / KL(p || target)`` (at most 1e5). Tasks are samples of p clipped to the box.
    The environment declares its initial and target distributions (``spdl_initial``, ``spdl_target``: mean and
    std per dimension; point-mass: SPDL's, from (0, 4.25, 2) +- (2, 1.875, 1) to the narrow gate (2.5, 0.5, 0)
    +- 0.004); without them the initial one is centred on the easy region (std a quarter of its widths) and the
    target is the whole box (centre, std a quarter of the ranges).

    As TeachMyAgent's ``SelfPacedTeacher`` (defaults from its experiment scripts: updates every 100k steps after
    200k, zeta 0.05, alpha offset 0, max KL 0.8, buffer 1000 emptied at each update) except: the constrained step
    is scipy's SLSQP on (mean, log-diagonal and lower triangle of L) instead of conjugate gradient with a line
    search (both solve the same trust-region problem; when SLSQP ends outside the region or no better, a
    backtracking line search toward its point keeps the best feasible step, as the reference's does); the
    student's values come with each episode (``initial_value``) instead of being recomputed at update time.
    The SPDL paper's point-mass runs use max KL 0.05 and zeta 1.6 with 2M steps: set them with ``--teacher-param``.

    :param update_frequency: environment steps between two updates of the distribution
    :param update_offset: environment steps before the first update
    :param max_kl: trust region: the largest KL(p_old || p_new) of one update
    :param zeta: weight of the pull toward the target, relative to the mean value
    :param alpha_offset: updates made with alpha = 0 (no pull toward the target) first
    :param buffer_size: (task, value) pairs kept between updates
    :param std_lower_bound: smallest std per dimension (share of the range) while KL(p || target) > kl_threshold;
        0: none
    :param kl_threshold: KL to the target above which std_lower_bound applies
    """

    supported_spaces = (BoxTaskSpace,)
    state_attrs = ("mean", "chol", "buffer", "steps", "next_update", "updates")
    needs = "the student's initial_value score, episode lengths"

    def __init__(
        self,
        task_space: TaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        update_frequency: int = 100_000,
        update_offset: int = 200_000,
        max_kl: float = 0.8,
        zeta: float = 0.05,
        alpha_offset: int = 0,
        buffer_size: int = 1000,
        std_lower_bound: float = 0.0,
        kl_threshold: float = 0.0,
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if update_frequency < 1 or update_offset < 0 or max_kl <= 0 or zeta < 0 or buffer_size < 2:
            raise ValueError("need update_frequency >= 1, update_offset >= 0, max_kl > 0, zeta >= 0, buffer_size >= 2")
        self.update_frequency, self.update_offset, self.max_kl = update_frequency, update_offset, max_kl
        self.zeta, self.alpha_offset, self.buffer_size = zeta, alpha_offset, buffer_size
        self.std_lower_bound, self.kl_threshold = std_lower_bound, kl_threshold
        span = task_space.span
        self.target_mean, self.target_chol = (task_space.low + task_space.high) / 2, np.diag(span / 4)
        self.mean, self.chol = self.target_mean.copy(), np.diag(span / 10)
        self.buffer: list[tuple[np.ndarray, float]] = []
        # the reference updates at every multiple of update_frequency from update_offset on
        first = -(-max(update_offset, update_frequency) // update_frequency) * update_frequency
        self.steps, self.next_update, self.updates = 0, first, 0

    def prepare(self, env: Any) -> None:
        """The environment's initial and target distributions (see the class docstring)."""
        easy = getattr(env, "easy_task_space", None) or self.task_space
        initial = getattr(env, "spdl_initial", None) or ((easy.low + easy.high) / 2, (easy.high - easy.low) / 4)
        target = getattr(env, "spdl_target", None) or (self.target_mean, np.diag(self.target_chol))
        self.set_distributions(*initial, *target)

    def set_distributions(self, mean: Any, std: Any, target_mean: Any, target_std: Any) -> None:
        """Start from N(mean, diag(std^2)) and move toward N(target_mean, diag(target_std^2)).

        :raises ValueError: shapes that do not match the task space, or a std that is not positive
        """
        arrays = [np.asarray(v, dtype=np.float64).reshape(-1) for v in (mean, std, target_mean, target_std)]
        if any(a.shape != (self.task_space.dim,) for a in arrays) or (arrays[1] <= 0).any() or (arrays[3] <= 0).any():
            raise ValueError(f"SPDL distributions need {self.task_space.dim} means and positive stds each")
        self.mean, self.chol = arrays[0], np.diag(arrays[1])
        self.target_mean, self.target_chol = arrays[2], np.diag(arrays[3])

    @property
    def required_scores(self) -> tuple[str, ...]:
        return ("initial_value",)

    def _sample(self) -> Task:
        sample = self.mean + self.chol @ self.rng.standard_normal(self.task_space.dim)
        return self.task_space.clip(sample)

    def _update(self, task: Task, feedback: Feedback) -> None:
        self.buffer.append((np.asarray(task, dtype=np.float64), float(feedback.scores["initial_value"])))
        del self.buffer[: -self.buffer_size]
        self.steps += int(feedback.length)
        if self.steps >= self.next_update:
            self.next_update = (self.steps // self.update_frequency + 1) * self.update_frequency
            if len(self.buffer) >= 2:
                self._step()

    # -- the constrained update ---------------------------------------------------------------------------------
    def _unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.task_space.dim
        chol = np.zeros((d, d))
        chol[np.tril_indices(d, -1)] = theta[2 * d :]
        chol[np.diag_indices(d)] = np.exp(theta[d : 2 * d])
        return theta[:d], chol

    def _step(self) -> None:
        d = self.task_space.dim
        contexts = np.array([c for c, _ in self.buffer])
        values = np.array([v for _, v in self.buffer])
        self.buffer = []
        self.updates += 1
        old_mean, old_chol = self.mean.copy(), self.chol.copy()
        old_log_p = gaussian_log_pdf(contexts, old_mean, old_chol)
        kl_target = gaussian_kl(old_mean, old_chol, self.target_mean, self.target_chol)
        alpha = 0.0
        if self.updates > self.alpha_offset:
            alpha = min(self.zeta * max(float(values.mean()), 0.0) / max(kl_target, 1e-10), 1e5)

        def objective(theta: np.ndarray) -> float:
            mean, chol = self._unpack(theta)
            ratio = np.exp(np.clip(gaussian_log_pdf(contexts, mean, chol) - old_log_p, -50, 50))
            return -(float(np.mean(ratio * values)) - alpha * gaussian_kl(mean, chol, self.target_mean, self.target_chol))

        def trust_region(theta: np.ndarray) -> float:
            mean, chol = self._unpack(theta)
            return self.max_kl - gaussian_kl(old_mean, old_chol, mean, chol)

        start = np.concatenate([old_mean, np.log(np.diag(old_chol)), old_chol[np.tril_indices(d, -1)]])
        span, low, high = self.task_space.span, self.task_space.low, self.task_space.high
        # box constraints keep SLSQP's trial points finite (they may leave the trust region before it is enforced)
        bounds = [(lo - s_, hi + s_) for lo, hi, s_ in zip(low, high, span, strict=True)]
        bounds += [(math.log(1e-6 * s_), math.log(10 * s_)) for s_ in span]
        bounds += [(-10 * span.max(), 10 * span.max())] * (len(start) - 2 * d)
        start = np.clip(start, [b[0] for b in bounds], [b[1] for b in bounds])
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            result = minimize(
                objective,
                start,
                method="SLSQP",
                bounds=bounds,
                constraints=[{"type": "ineq", "fun": trust_region}],
                options={"maxiter": 100},
            )
        theta, best = start, objective(start)
        if np.isfinite(result.x).all():  # the solution, else the longest step toward it that is feasible and better
            for fraction in 0.5 ** np.arange(10):
                candidate = start + fraction * (result.x - start)
                if trust_region(candidate) >= -1e-6 and objective(candidate) < best:
                    theta = candidate
                    break
        self.mean, self.chol = self._unpack(theta)
        far = gaussian_kl(self.mean, self.chol, self.target_mean, self.target_chol) > self.kl_threshold
        if self.std_lower_bound > 0 and far:
            floor = self.std_lower_bound * self.task_space.span
            self.chol[np.diag_indices(d)] = np.maximum(np.diag(self.chol), floor)

    def stats(self) -> dict[str, float]:
        kl = gaussian_kl(self.mean, self.chol, self.target_mean, self.target_chol)
        means = {f"mean_{n}": float(m) for n, m in zip(self.task_space.names, self.mean, strict=True)}
        return {"kl_to_target": kl, "updates": float(self.updates), **means}
