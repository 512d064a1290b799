"""Stump Tracks (teachDeepRL): gymnasium's BipedalWalker physics on a track of stumps built from the task.

Task: ``stump_height`` (mean stump height, in terrain steps of 14/30 world units) and ``obstacle_spacing``
(flat gap between two stumps, in terrain steps). After the usual flat start pad, stumps one terrain step wide
follow one another with that gap until the end of the 200-step track; each stump's height is drawn from
N(stump_height, 0.1) with the level's own generator and floored at 0.05 steps, so the same task and level seed
always build the same terrain. Bounds: heights [0, 3] and spacing [0, 6] (``variant="default"``);
``variant="infeasible"`` uses heights [0, 9] (mostly infeasible), ``variant="trivial"`` heights [-3, 3]
(mostly trivial: non-positive means give flat-ish stumps). Reward as BipedalWalker (about 300 for a full
track, -100 on a fall, a small torque penalty); episodes are truncated after 2000 steps. Success: return > 230.

Privileged observations (``observation_mode="privileged"``): ``{"student": the 24 usual values,
"privileged": [task..., terrain heights at the next 10 terrain steps ahead of the hull, relative to the
ground]}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d import bipedal_walker as bw

from curriculum.spaces import BoxTaskSpace
from environments.base import ParametricEnv, check_observation_mode

STEP = bw.TERRAIN_STEP
MIN_STUMP = 0.05  # in terrain steps
N_AHEAD = 10

VARIANTS = {
    "default": BoxTaskSpace(["stump_height", "obstacle_spacing"], [0.0, 0.0], [3.0, 6.0]),
    "infeasible": BoxTaskSpace(["stump_height", "obstacle_spacing"], [0.0, 0.0], [9.0, 6.0]),
    "trivial": BoxTaskSpace(["stump_height", "obstacle_spacing"], [-3.0, 0.0], [3.0, 6.0]),
}


class StumpTracksEnv(ParametricEnv, bw.BipedalWalker):
    """Stump Tracks walker (see the module docstring).

    :param variant: task bounds: ``default``, ``infeasible`` or ``trivial``
    :param observation_mode: ``plain`` (24 floats) or ``privileged`` (a Dict with the task and terrain ahead)
    :param max_episode_steps: steps before truncation
    :param render_mode: ``rgb_array`` (headless) or None
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": bw.FPS}
    task_space = VARIANTS["default"]
    default_task = np.array([1.0, 3.0])
    return_bounds = (-150.0, 350.0)
    success_threshold = 230.0
    success_rule = "episode return > 230"

    def __init__(
        self,
        variant: str = "default",
        observation_mode: str = "plain",
        max_episode_steps: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant '{variant}'; valid: {', '.join(VARIANTS)}")
        bw.BipedalWalker.__init__(self, render_mode=render_mode, hardcore=False)
        self.variant = variant
        self.task_space = VARIANTS[variant]  # type: ignore[misc]
        self.observation_mode = check_observation_mode(observation_mode)
        self.max_episode_steps = max_episode_steps
        plain = self.observation_space
        if observation_mode == "privileged":
            extra = gym.spaces.Box(-np.inf, np.inf, (self.task_space.dim + N_AHEAD,), np.float32)
            self.observation_space = gym.spaces.Dict({"student": plain, "privileged": extra})
        self._heights = np.zeros(bw.TERRAIN_LENGTH)
        self.stump_heights: list[float] = []
        self._resetting = False

    # -- terrain -----------------------------------------------------------------------------------------------
    def _generate_terrain(self, hardcore: bool) -> None:
        height_mean, spacing = (float(v) for v in self.task)
        ground = bw.TERRAIN_HEIGHT
        self.terrain, self.terrain_x, self.terrain_y = [], [], []
        self.stump_heights = []
        self._heights = np.zeros(bw.TERRAIN_LENGTH)
        x = bw.TERRAIN_STARTPAD * STEP
        end = (bw.TERRAIN_LENGTH - bw.TERRAIN_GRASS) * STEP
        while x + STEP <= end:
            height = max(float(self._level_rng.normal(height_mean, 0.1)), MIN_STUMP)
            poly = [(x, ground), (x + STEP, ground), (x + STEP, ground + height * STEP), (x, ground + height * STEP)]
            self.fd_polygon.shape.vertices = poly
            body = self.world.CreateStaticBody(fixtures=self.fd_polygon)
            body.color1, body.color2 = (255, 255, 255), (153, 153, 153)
            self.terrain.append(body)
            self.stump_heights.append(height)
            first, last = int(x / STEP), int(np.ceil((x + STEP) / STEP))
            self._heights[first:last] = np.maximum(self._heights[first:last], height * STEP)
            x += STEP * (1.0 + spacing)
        for i in range(bw.TERRAIN_LENGTH):
            self.terrain_x.append(i * STEP)
            self.terrain_y.append(ground)
        self.terrain_poly = []
        for i in range(bw.TERRAIN_LENGTH - 1):
            edge = [(self.terrain_x[i], self.terrain_y[i]), (self.terrain_x[i + 1], self.terrain_y[i + 1])]
            self.fd_edge.shape.vertices = edge
            body = self.world.CreateStaticBody(fixtures=self.fd_edge)
            colour = (76, 255 if i % 2 == 0 else 204, 76)
            body.color1 = body.color2 = colour
            self.terrain.append(body)
            self.terrain_poly.append(([*edge, (edge[1][0], 0), (edge[0][0], 0)], (102, 153, 76)))
        self.terrain.reverse()

    def heights_ahead(self) -> np.ndarray:
        """Obstacle heights (world units above the ground) at the next ``N_AHEAD`` terrain steps."""
        start = int(self.hull.position.x / STEP) + 1
        window = self._heights[start : start + N_AHEAD]
        return np.pad(window, (0, N_AHEAD - len(window)))

    # -- gymnasium API ---------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        gym.Env.reset(self, seed=seed)  # seed first: the level seed is drawn from this generator
        self._level_rng = self._begin_episode()
        self._resetting = True  # BipedalWalker.reset ends with one step of its own: keep it raw and uncounted
        try:
            obs, _ = bw.BipedalWalker.reset(self, seed=None, options=options)
        finally:
            self._resetting = False
        self.steps = 0
        return self._observation(obs), self.task_info()

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._resetting:
            return bw.BipedalWalker.step(self, action)
        obs, reward, terminated, _, _ = bw.BipedalWalker.step(self, action)
        self.steps += 1
        truncated = self.steps >= self.max_episode_steps and not terminated
        return self._observation(obs), float(reward), terminated, truncated, self.task_info()

    def _observation(self, obs: np.ndarray) -> Any:
        if self.observation_mode == "privileged":
            extra = np.concatenate([self.task, self.heights_ahead()]).astype(np.float32)
            return {"student": obs, "privileged": extra}
        return obs

    # -- test sets ---------------------------------------------------------------------------------------------
    def test_set(self, name: str = "default") -> np.ndarray:  # type: ignore[override]
        """``default``: a 10 x 10 grid over stump height x spacing of this variant's bounds (TeachMyAgent)."""
        if name != "default":
            raise KeyError(f"unknown test set '{name}'; valid: default")
        space = self.task_space
        heights = np.linspace(space.low[0], space.high[0], 10)
        spacings = np.linspace(space.low[1], space.high[1], 10)
        return np.array([(h, s) for h in heights for s in spacings])

    def test_set_names(self) -> list[str]:  # type: ignore[override]
        return ["default"]
