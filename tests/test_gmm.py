import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SklearnGMM

from curriculum.gmm import fit_best_gmm, fit_gmms

CENTRES = np.array([[0.2, 0.2, 0.1], [0.7, 0.3, 0.5], [0.5, 0.8, 0.9]])


def blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, 0.05, (80, 3)) for c in CENTRES])


def test_recovers_separated_blobs_and_picks_their_number():
    x = blobs()
    best = fit_best_gmm(x, range(2, 11), np.random.default_rng(0), criterion="bic")
    assert best.n_components == 3
    order = np.argsort(best.means[:, 0])
    np.testing.assert_allclose(best.means[order], CENTRES[np.argsort(CENTRES[:, 0])], atol=0.02)
    np.testing.assert_allclose(best.weights.sum(), 1.0)
    np.testing.assert_allclose(best.covariances[0], np.eye(3) * 0.05**2, atol=1e-3)


def test_log_likelihood_matches_scikit_learn():
    x = blobs(1)
    ours = fit_gmms(x, [3], np.random.default_rng(0))[0]
    reference = SklearnGMM(3, covariance_type="full", random_state=0).fit(x)
    assert abs(ours.log_likelihood / len(x) - reference.score(x)) < 1e-4
    assert np.isclose(ours.criterion("aic", len(x)), reference.aic(x), rtol=1e-4)
    assert np.isclose(ours.criterion("bic", len(x)), reference.bic(x), rtol=1e-4)


def test_bank_fit_equals_separate_fits():
    x = np.random.default_rng(2).random((120, 2))
    together = fit_gmms(x, [2, 4], np.random.default_rng(5))
    # the k=2 mixture is seeded first in both cases, so a lone fit of it must end where the bank's did
    alone = fit_gmms(x, [2], np.random.default_rng(5))[0]
    np.testing.assert_allclose(alone.means, together[0].means)
    np.testing.assert_allclose(alone.covariances, together[0].covariances)
    assert alone.log_likelihood == pytest.approx(together[0].log_likelihood, rel=1e-12)
    assert together[1].n_components == 4


def test_sampling_follows_the_component():
    g = fit_best_gmm(blobs(), [3], np.random.default_rng(0))
    rng = np.random.default_rng(0)
    draws = np.array([g.sample_component(1, rng) for _ in range(2000)])
    np.testing.assert_allclose(draws.mean(axis=0), g.means[1], atol=0.01)
    np.testing.assert_allclose(np.cov(draws.T), g.covariances[1], atol=5e-4)
