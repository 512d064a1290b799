"""One seed, independent random streams.

Every consumer of a run's randomness (the teacher, the student, the evaluation, each sub-environment) takes its
own child of ``numpy.random.SeedSequence(seed)``, so no two consumers share a stream, sub-environment ``i`` of seed
``s`` has nothing in common with any sub-environment of seed ``s + 1``, and a run is reproducible from its seed
alone. Children are addressed by their spawn key, so sub-environment ``i``'s stream does not depend on how many
sub-environments there are.

Each stream is handed over as a 32-bit integer drawn from its child sequence (what gymnasium's ``reset(seed=...)``,
``numpy.random.default_rng`` and SB3's ``set_random_seed`` accept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TEACHER, _STUDENT, _EVALUATION, _ENVS, _TARGET, _ANTAGONIST = range(6)


def _draw(seed: int, *key: int) -> int:
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class Streams:
    """The seeds of one run's random streams, all spawned from ``seed``.

    :param seed: the run's seed (a non-negative integer)
    """

    seed: int

    def __post_init__(self) -> None:
        if int(self.seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")

    @property
    def teacher(self) -> int:
        """Seed of the teacher's generator."""
        return _draw(self.seed, _TEACHER)

    @property
    def student(self) -> int:
        """Seed of the student (SB3's python, numpy and torch generators, and its action space)."""
        return _draw(self.seed, _STUDENT)

    @property
    def evaluation(self) -> int:
        """Base seed of test-set evaluations (episode ``k`` of a task uses ``evaluation + k``)."""
        return _draw(self.seed, _EVALUATION)

    @property
    def target(self) -> int:
        """Base seed of the target-distribution evaluations (``--target-episodes``: tasks, action noise, levels)."""
        return _draw(self.seed, _TARGET)

    def env(self, index: int) -> int:
        """Seed of sub-environment ``index``'s generator (its noise and the level seeds it draws)."""
        return _draw(self.seed, _ENVS, index)

    def env_restart(self, index: int, timesteps: int) -> int:
        """Seed of sub-environment ``index`` restarted at step ``timesteps`` of a resumed run (an env that cannot
        capture its state): its own stream, distinct from the one it started with."""
        return _draw(self.seed, _ENVS, index, timesteps + 1)

    @property
    def antagonist(self) -> int:
        """Seed of PAIRED's antagonist, a second student (its python, numpy and torch streams, its action space)."""
        return _draw(self.seed, _ANTAGONIST)

    def antagonist_env(self, index: int, timesteps: int | None = None) -> int:
        """Seed of the antagonist's sub-environment ``index`` (restarted at step ``timesteps`` of a resumed run: its
        own stream again)."""
        return _draw(self.seed, _ANTAGONIST, index + 1, *(() if timesteps is None else (timesteps + 1,)))
