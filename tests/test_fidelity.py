"""Teachers and envs against their references' rules, on fixed inputs (issue: teachers that run as their
references run): SPDL's step and settings, the point mass, ADR, the regret teachers' replay schedule."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal
from threadpoolctl import threadpool_limits

from curriculum.base import Feedback
from curriculum.registry import UnknownTeacherError, make_teacher
from curriculum.spaces import BoxTaskSpace
from curriculum.spdl import SpdlTeacher, gaussian_kl, pack, step_objective, trust_region_kl, unpack
from tests.test_students import train_on_echo

BOX = BoxTaskSpace(["x", "y", "z"], [-4.0, 0.5, 0.0], [4.0, 8.0, 4.0])  # the SPDL point mass's context box
TARGET = (np.array([2.5, 0.5, 0.0]), np.array([0.004, 0.00375, 0.002]))


def kl_cov(mean_a, cov_a, mean_b, cov_b):
    """KL(N_a || N_b) from covariance matrices (written independently of curriculum.spdl)."""
    inv_b = np.linalg.inv(cov_b)
    diff = mean_b - mean_a
    logdet = np.linalg.slogdet(cov_b)[1] - np.linalg.slogdet(cov_a)[1]
    return 0.5 * (np.trace(inv_b @ cov_a) + diff @ inv_b @ diff - len(mean_a) + logdet)


def fixed_buffer(seed, episodes=40):
    rng = np.random.default_rng(seed)
    mean, std = np.array([0.0, 4.25, 2.0]) + rng.normal(0, 0.3, 3), np.array([2.0, 1.875, 1.0]) * rng.uniform(0.4, 1, 3)
    contexts = np.clip(mean + std * rng.standard_normal((episodes, 3)), BOX.low, BOX.high)
    goal = rng.uniform(BOX.low, BOX.high)
    values = 5 * np.exp(-np.sum(((contexts - goal) / [4, 3, 2]) ** 2, axis=1)) + rng.normal(0, 0.3, episodes)
    return mean, std, contexts, values


def spdl_after_one_step(seed, **params):
    """An SPDL teacher at the paper's max_kl and zeta, started at a fixed distribution, after one update on a
    fixed buffer; and that buffer."""
    mean, std, contexts, values = fixed_buffer(seed)
    params = {"max_kl": 0.05, "zeta": 1.6, **params}
    spdl = SpdlTeacher(BOX, update_frequency=len(values), update_offset=0, **params)
    spdl.set_distributions(mean, std, *TARGET)
    for context, value in zip(contexts, values, strict=True):
        spdl.update(context, Feedback(0.0, length=1, scores={"initial_value": float(value)}))
    assert spdl.updates == 1
    return spdl, (mean, std, contexts, values)


def independent_optimum(mean, std, contexts, values, alpha, max_kl=0.05, starts=4):
    """The best objective SLSQP finds (finite differences, several starts), with scipy.stats densities."""
    old_cov = np.diag(std**2)
    old_log_p = multivariate_normal(mean, old_cov).logpdf(contexts)

    def objective(theta):
        m, chol = unpack(theta, 3)
        cov = chol @ chol.T
        ratio = np.exp(multivariate_normal(m, cov, allow_singular=True).logpdf(contexts) - old_log_p)
        return float(np.mean(ratio * values)) - alpha * kl_cov(m, cov, TARGET[0], np.diag(TARGET[1] ** 2))

    def region(theta):
        m, chol = unpack(theta, 3)
        return max_kl - kl_cov(mean, old_cov, m, chol @ chol.T)

    rng = np.random.default_rng(0)
    old = pack(mean, np.diag(std))
    best = objective(old)
    for k in range(starts):
        start = old + (0 if k == 0 else rng.normal(0, 0.03, old.shape))
        if region(start) < 0:
            continue
        result = minimize(
            lambda t: -objective(t),
            start,
            method="SLSQP",
            constraints=[{"type": "ineq", "fun": region}],
            bounds=[(-20, 20)] * 3 + [(-8, 4)] * 3 + [(-20, 20)] * 3,
            options={"ftol": 1e-13, "maxiter": 1000},
        )
        if region(result.x) >= -1e-9:
            best = max(best, -result.fun)
    return best


def reached_objective(spdl, mean, std, contexts, values, alpha):
    old_log_p = multivariate_normal(mean, np.diag(std**2)).logpdf(contexts)
    cov = spdl.chol @ spdl.chol.T
    ratio = np.exp(multivariate_normal(spdl.mean, cov).logpdf(contexts) - old_log_p)
    return float(np.mean(ratio * values)) - alpha * kl_cov(spdl.mean, cov, TARGET[0], np.diag(TARGET[1] ** 2))


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_spdl_step_reaches_the_constrained_optimum_of_an_independent_solve(seed):
    spdl, (mean, std, contexts, values) = spdl_after_one_step(seed)
    kl_target = kl_cov(mean, np.diag(std**2), TARGET[0], np.diag(TARGET[1] ** 2))
    alpha = min(1.6 * max(values.mean(), 0) / kl_target, 1e5)
    best = independent_optimum(mean, std, contexts, values, alpha)
    reached = reached_objective(spdl, mean, std, contexts, values, alpha)
    assert reached >= best - 1e-3 * abs(best), (reached, best)
    assert kl_cov(mean, np.diag(std**2), spdl.mean, spdl.chol @ spdl.chol.T) <= 0.05 + 1e-9


def test_spdl_step_is_the_same_on_one_and_two_threads():
    results = []
    for threads in (1, 2):
        with threadpool_limits(threads):
            spdl, _ = spdl_after_one_step(5)
        results.append(pack(spdl.mean, spdl.chol))
    np.testing.assert_array_equal(results[0], results[1])


def test_spdl_gradients_match_finite_differences():
    mean, std, contexts, values = fixed_buffer(1)
    chol = np.diag(std) + np.tril(np.full((3, 3), 0.2), -1)
    theta = pack(mean + 0.1, chol)
    old_log_p = multivariate_normal(mean, np.diag(std**2)).logpdf(contexts)
    args = (contexts, values, old_log_p, TARGET[0], np.diag(TARGET[1]), 1e-5)
    for function, extra in ((step_objective, args), (trust_region_kl, (mean, np.diag(std)))):
        _, grad = function(theta, *extra)
        numeric = [(function(theta + e, *extra)[0] - function(theta - e, *extra)[0]) / 2e-6 for e in np.eye(9) * 1e-6]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    assert trust_region_kl(theta, mean, np.diag(std))[0] == pytest.approx(
        kl_cov(mean, np.diag(std**2), *(lambda m, c: (m, c @ c.T))(*unpack(theta, 3)))
    )


def test_spdl_alpha_offset_counts_as_the_references_do():
    """psclklnk and TeachMyAgent: alpha = 0 while iteration < offset, the iteration counted before the update:
    offset 1 pulls at the first update, as offset 0 does; offset 2 does not."""
    first = {
        offset: pack(*(lambda t: (t.mean, t.chol))(spdl_after_one_step(2, alpha_offset=offset)[0])) for offset in (0, 1, 2)
    }
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.allclose(first[1], first[2])
    spdl, _ = spdl_after_one_step(2, zeta=0.0)  # zeta 0: no pull at all, as offset 2's first update
    np.testing.assert_allclose(pack(spdl.mean, spdl.chol), first[2], rtol=1e-6, atol=1e-8)


def test_spdl_std_bound_inside_the_solve_or_after_it():
    """A std bound that binds on x: inside the solve (psclklnk) the step stays in the trust region with every std
    at or above the bound; floored afterwards (TeachMyAgent) the std is raised past the step it took. A bound no
    distribution in the region meets: the old distribution raised to it."""
    bound = 0.13  # share of each range: (1.04, 0.975, 0.52); x's std is 0.897, the unbounded step takes it to 0.988
    kls, stds = {}, {}
    for mode in ("solve", "floor"):
        spdl, (mean, std, _, _) = spdl_after_one_step(4, std_lower_bound=bound, kl_threshold=1.0, std_bound=mode)
        stds[mode] = np.diag(spdl.chol)
        kls[mode] = kl_cov(mean, np.diag(std**2), spdl.mean, spdl.chol @ spdl.chol.T)
    floor = bound * BOX.span
    assert (stds["solve"] >= floor - 1e-9).all() and (stds["floor"] >= floor - 1e-12).all()
    assert stds["solve"][0] == pytest.approx(floor[0], rel=1e-4) and kls["solve"] <= 0.05 + 1e-9
    assert not np.allclose(stds["solve"], stds["floor"])
    unbounded, _ = spdl_after_one_step(4, std_lower_bound=bound, kl_threshold=1e12)  # KL below the threshold
    assert np.diag(unbounded.chol)[0] == pytest.approx(0.988, abs=1e-3)
    spdl, (mean, std, _, _) = spdl_after_one_step(4, std_lower_bound=0.2, kl_threshold=1.0)  # x: 0.897 -> 1.6
    np.testing.assert_array_equal(spdl.mean, mean)
    np.testing.assert_allclose(np.diag(spdl.chol), np.maximum(std, 0.2 * BOX.span))


def test_spdl_paper_preset_and_its_overrides():
    spdl = make_teacher("spdl", BOX, preset="point-mass-paper")
    settings = {k: getattr(spdl, k) for k in SpdlTeacher.PRESETS["point-mass-paper"]}
    assert settings == {
        "update_frequency": 2048,
        "update_offset": 10240,
        "alpha_offset": 70,
        "zeta": 1.6,
        "max_kl": 0.05,
        "std_lower_bound": 0.025,
        "kl_threshold": 8000.0,
        "performance": "return",
    }
    np.testing.assert_allclose(spdl.std_lower_bound * BOX.span, [0.2, 0.1875, 0.1])  # the paper's bound
    assert spdl.next_update == 10240 and spdl.required_scores == ("initial_value", "discounted_return")
    assert make_teacher("spdl", BOX, preset="point-mass-paper", alpha_offset=20).alpha_offset == 20
    with pytest.raises(UnknownTeacherError, match="no preset 'jmlr'; valid: point-mass-paper"):
        make_teacher("spdl", BOX, preset="jmlr")


def test_spdl_average_performance_scales_alpha_with_the_discounted_returns():
    """performance=return: alpha from the mean discounted return, not the values (zero values, positive
    returns: a pull toward the target all the same)."""
    moved = {}
    for performance in ("value", "return"):
        spdl = SpdlTeacher(BOX, update_frequency=30, update_offset=0, max_kl=0.05, zeta=1.6, performance=performance)
        spdl.set_distributions([0.0, 4.25, 2.0], [2.0, 1.875, 1.0], *TARGET)
        for _ in range(30):
            spdl.update(spdl.sample(), Feedback(0.0, scores={"initial_value": 0.0, "discounted_return": 3.0}))
        moved[performance] = gaussian_kl(spdl.mean, spdl.chol, spdl.target_mean, spdl.target_chol)
    assert moved["return"] < moved["value"] - 1.0


def test_the_discounted_return_score_uses_the_environments_rewards_and_the_students_gamma():
    teacher, _ = train_on_echo(2, False, steps=200, n_steps=8)  # episodes of 1-5 steps split across rollouts
    assert len(teacher.updates) > 30
    for task, feedback in teacher.updates:  # a reward of a + 10 b on the last step only
        expected = 0.99 ** (feedback.length - 1) * (task[0] + 10 * task[1])
        assert feedback.scores["discounted_return"] == pytest.approx(expected, rel=1e-5)
