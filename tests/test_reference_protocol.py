"""The figures the teachers must reach on the toy benchmark's reference protocol (2-D, 10 cells, 20k episodes).

Thresholds are the reference implementations' own results (teachDeepRL code, measured on the same
protocol); see docs/benchmarks.md. Each run is deterministic for its seed.
"""

import statistics

import pytest

from environments.simulated_student import simulate

THRESHOLDS = {"random": (None, 10.0), "alp-gmm": (35.0, None), "covar-gmm": (66.0, None), "riac": (50.0, None)}


@pytest.mark.parametrize("name", list(THRESHOLDS))
def test_reference_protocol_mastered_percent(name):
    scores = [simulate(name, 20000, seed=seed).mastered[20000] for seed in (0, 1, 2)]
    mean = statistics.mean(scores)
    at_least, at_most = THRESHOLDS[name]
    if at_least is not None:
        assert mean >= at_least, scores
    if at_most is not None:
        assert mean <= at_most, scores
