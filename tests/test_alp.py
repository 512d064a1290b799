import copy
import itertools
import pickle

import numpy as np

from curriculum.alp import NearestNeighbourALP


def brute_force_alps(points: np.ndarray, returns: np.ndarray, min_history: int = 6) -> list[float]:
    out = []
    for i, (p, r) in enumerate(zip(points, returns, strict=True)):
        if i < min_history:
            out.append(0.0)
            continue
        nearest = np.argmin(((points[:i] - p) ** 2).sum(axis=1))
        out.append(abs(r - returns[nearest]))
    return out


def test_matches_brute_force_across_tree_rebuilds_and_copies():
    rng = np.random.default_rng(0)
    points, returns = rng.random((3000, 3)), rng.random(3000)
    expected = brute_force_alps(points, returns)
    alp = NearestNeighbourALP(3)
    # uneven batches, one episode at a time included, crossing several tree rebuilds
    bounds = [0, 1, 2, 7, 250, 251, 900, 1500]
    got = np.concatenate([alp.compute_and_add(points[a:b], returns[a:b]) for a, b in itertools.pairwise(bounds)])
    clone = pickle.loads(pickle.dumps(alp))
    twin = copy.deepcopy(alp)
    got = np.concatenate([got, alp.compute_and_add(points[1500:2600], returns[1500:2600])])
    got = np.concatenate([got, alp.compute_and_add(points[2600:], returns[2600:])])
    np.testing.assert_allclose(got, expected)
    for other in (clone, twin):
        np.testing.assert_allclose(other.compute_and_add(points[1500:], returns[1500:]), expected[1500:])
    assert len(alp) == 3000
    assert alp._tree is not None and alp._n_tree > 1000  # the tree was really used


def test_alp_starts_after_more_than_five_earlier_episodes_as_in_the_reference():
    alp = NearestNeighbourALP(1)
    got = [float(alp.compute_and_add(np.array([[i / 10]]), np.array([float(i)]))[0]) for i in range(8)]
    assert got == [0.0] * 6 + [1.0, 1.0]  # teachDeepRL: ALP once its history holds more than 5 points
