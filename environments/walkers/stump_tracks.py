"""Stump Tracks (teachDeepRL): stumps of a mean height and spacing, on any walker body.

Task: ``stump_height`` (mean stump height, in terrain steps of 14/30 world units) and ``obstacle_spacing``
(flat gap between two stumps, in world units, as in teachDeepRL and TeachMyAgent). After the flat start pad,
stumps one terrain step wide follow one another with that gap until the end of the 200-step track; each stump's
height is drawn from N(stump_height, 0.1) with the level's own generator and floored at 0.05 steps, so the same
task and level seed always build the same terrain. Bounds: heights [0, 3] and spacing [0, 6] (``variant="default"``);
``infeasible`` uses heights [0, 9] (mostly infeasible), ``trivial`` heights [-3, 3] (mostly trivial).
Test set ``default``: a 10 x 10 grid over the variant's bounds (TeachMyAgent).
"""

from __future__ import annotations

import numpy as np

from curriculum.spaces import BoxTaskSpace
from environments.walkers.env import WalkerEnv
from environments.walkers.terrain import stump_track

VARIANTS = {
    "default": BoxTaskSpace(["stump_height", "obstacle_spacing"], [0.0, 0.0], [3.0, 6.0]),
    "infeasible": BoxTaskSpace(["stump_height", "obstacle_spacing"], [0.0, 0.0], [9.0, 6.0]),
    "trivial": BoxTaskSpace(["stump_height", "obstacle_spacing"], [-3.0, 0.0], [3.0, 6.0]),
}


class StumpTracksEnv(WalkerEnv):
    """Stump Tracks (see the module docstring).

    :param variant: task bounds: ``default``, ``infeasible`` or ``trivial``
    :param body: embodiment: ``short``, ``default`` or ``quadruped``
    :param observation_mode: ``plain`` or ``privileged``
    :param max_episode_steps: steps before truncation
    :param render_mode: ``rgb_array`` or None
    """

    task_space = VARIANTS["default"]
    default_task = np.array([1.0, 3.0])
    generator = staticmethod(stump_track)  # type: ignore[assignment]  # mypy binds a Callable class variable

    def __init__(
        self,
        variant: str = "default",
        body: str = "default",
        observation_mode: str = "plain",
        max_episode_steps: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
        self.variant = variant
        self.task_space = VARIANTS[variant]
        # ACCEL's start: stumps at most 0.3 high, any spacing
        low, high = self.task_space.low, self.task_space.high
        self.easy_task_space = BoxTaskSpace(self.task_space.names, [0.0, low[1]], [0.3, high[1]])
        super().__init__(body, observation_mode, max_episode_steps, render_mode)
        self._ezpickle_kwargs["variant"] = variant  # a pickled copy is rebuilt with its variant

    @property
    def stump_heights(self) -> list[float]:
        """Heights (terrain steps) of the stumps of the current episode."""
        return self.terrain_info.obstacle_heights

    def _test_sets(self) -> dict[str, np.ndarray]:
        """``default``: a 10 x 10 grid over stump height x spacing of this variant's bounds (TeachMyAgent)."""
        low, high = self.task_space.low, self.task_space.high
        grid = [(h, s) for h in np.linspace(low[0], high[0], 10) for s in np.linspace(low[1], high[1], 10)]
        return {"default": np.array(grid)}
