"""TeachMyAgent's "mostly infeasible" challenge on LunarLander-v3 with wind (``lunar-lander-infeasible``).

The task is ``lunar-lander``'s (gravity, wind power, turbulence power: :mod:`environments.classics`) plus
``engine_state`` in [-3, 1]: the lander's engines work when it is > 0 and have failed when it is <= 0, the main
engine stuck at full thrust and the side engines dead. On a failed-engine task every action is replaced by "fire
the main engine" before the physics step, so the episode (the initial push, the wind, the flight and every
reward) is the same whatever the policy does: no policy does better there than any other, and none can land.
Measured over 2,000 failed-engine tasks drawn uniformly (one level seed each): 1,990 episodes flew off the side of
the screen and 10 crashed, none landed, the highest return was -257 (success needs 200) and the episodes lasted
116 steps on average (``tests/test_reproduce.py`` checks 200 of them). Uniformly, 75% of the space is failed
engines. The working part is ``lunar-lander`` itself, unchanged: the default test set is ``lunar-lander``'s 27
tasks with working engines, and ``failed`` holds the same 27 with failed ones. :meth:`LunarLanderInfeasibleEnv.feasible`
tells the working engines, so a run reports the share of its episodes spent on failed ones (``infeasible_share``
in ``metrics.json``, ``infeasible %`` in a comparison's report).

An earlier version let a failed engine do nothing (every action replaced by "no-op"): the lander then fell freely,
and 5 of 2,000 such falls (low gravity, straight onto the pad) landed well enough to count as a success, so that
version's failed engines were unlearnable but not unsolvable.

TeachMyAgent's version widens Stump Tracks' stump heights from [0, 3] to [0, 9] (most stumps too high to climb),
trains SAC for 20M steps, 16 seeds, and tests on the [0, 3] stumps (its ``benchmark_scripts``). There a walker
still earns reward before a stump it cannot climb; here a failed engine gives the student nothing to learn,
which is the cleanest form of the challenge: a learning-progress teacher should see no progress there, and random
spends three quarters of its episodes on it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d.lunar_lander import LunarLander

from environments.classics import LUNAR_LANDER
from environments.contextual import ContextualEnv

GYM_ID = "teachrl/LunarLanderEngineFailure-v0"


class EngineFailureLunarLander(LunarLander):
    """gymnasium's LunarLander whose engines can fail: at ``engine_state <= 0`` every action is "fire the main
    engine" (stuck at full thrust; the side engines dead)."""

    engine_state: float = 1.0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self.engine_state <= 0.0:
            action = np.array([1.0, 0.0], dtype=np.float32) if self.continuous else 2
        return super().step(action)


if GYM_ID not in gym.registry:
    gym.register(id=GYM_ID, entry_point=f"{__name__}:EngineFailureLunarLander", max_episode_steps=1000, reward_threshold=200)

LUNAR_LANDER_INFEASIBLE: dict[str, Any] = {
    **LUNAR_LANDER,
    "env": GYM_ID,
    "dims": {**LUNAR_LANDER["dims"], "engine_state": {"low": -3.0, "high": 1.0, "attr": "engine_state"}},
    "default": {**LUNAR_LANDER["default"], "engine_state": 1.0},
}


class LunarLanderInfeasibleEnv(ContextualEnv):
    """LunarLander-v3 with wind and engines that fail (main engine stuck at full thrust) at ``engine_state <= 0``
    (see the module docstring).

    :param observation_mode: ``plain`` or ``privileged``
    :param render_mode: passed to the env
    """

    def __init__(self, observation_mode: str = "plain", render_mode: str | None = None):
        super().__init__(LUNAR_LANDER_INFEASIBLE, observation_mode=observation_mode, render_mode=render_mode)
        self._arguments = {"observation_mode": observation_mode, "render_mode": render_mode}

    @staticmethod
    def feasible(tasks: np.ndarray) -> np.ndarray:  # type: ignore[override]  # fills the declared optional callable
        """Which rows of ``tasks`` can be solved: working engines (``engine_state > 0``)."""
        return np.asarray(tasks, dtype=np.float64).reshape(-1, 4)[:, 3] > 0.0

    def _test_sets(self) -> dict[str, np.ndarray]:
        grid = super()._test_sets()["default"]  # lunar-lander's 3 x 3 x 3 grid x engine_state in {-3, -1, 1}
        return {"default": grid[grid[:, 3] == 1.0], "failed": grid[grid[:, 3] == -1.0]}
