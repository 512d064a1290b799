"""Hexagon Tracks (TeachMyAgent): hexagonal obstacles whose 6 vertices move with 12 task parameters.

Task: 12 values in [0, 4], the (x, y) offsets of the 6 vertices of a default hexagon (see
``environments.walkers.terrain.hexagon_track``), with per-obstacle Gaussian noise and a fixed pitch between
obstacles. Two dimensions (``v0_y`` and ``v1_y``) push the ground vertices into the ground and change nothing
a walker can touch: irrelevant by construction. Test set ``default``: 50 uniform tasks drawn with seed 0.
"""

from __future__ import annotations

import numpy as np

from curriculum.spaces import BoxTaskSpace
from environments.walkers.env import WalkerEnv
from environments.walkers.terrain import hexagon_track

NAMES = [f"v{i}_{axis}" for i in range(6) for axis in ("x", "y")]


class HexagonTracksEnv(WalkerEnv):
    """Hexagon Tracks (see the module docstring).

    :param body: embodiment: ``short``, ``default`` or ``quadruped``
    :param observation_mode: ``plain`` or ``privileged``
    :param max_episode_steps: steps before truncation
    :param render_mode: ``rgb_array`` or None
    """

    task_space = BoxTaskSpace(NAMES, [0.0] * 12, [4.0] * 12)
    default_task = np.full(12, 0.5)
    #: ACCEL's start: every vertex offset at most 0.5 (nearly flat ground)
    easy_task_space = BoxTaskSpace(NAMES, [0.0] * 12, [0.5] * 12)
    generator = staticmethod(hexagon_track)  # type: ignore[assignment]  # mypy binds a Callable class variable

    @classmethod
    def _test_sets(cls) -> dict[str, np.ndarray]:
        return {"default": np.random.default_rng(0).uniform(0.0, 4.0, (50, 12))}
