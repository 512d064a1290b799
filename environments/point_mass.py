"""Point-mass gate (SPDL's contextual point mass, Klink et al. 2020): numpy only, ~tens of thousands of steps/s.

A point mass starts at (0, 3) and must reach (0, -3). A wall along y = 0 has a gate; crossing the wall
outside the gate (|x at the crossing - gate_x| > width / 2) is a crash and ends the episode.
Task: ``gate_x`` in [-4, 4], ``gate_width`` in [0.5, 8], ``friction`` in [0, 4].
Dynamics: acceleration = 1.5 * force - friction * velocity + N(0, 0.05); Euler steps of 0.01 s, 10 per env
step; positions clipped to [-4, 4]. By default as SPDL's code (psclklnk/spdl ``contextual_point_mass.py``):
explicit Euler (positions move with the velocity before the sub-step's acceleration), and a crossing of the
wall's line outside the gate in either direction is a crash (``y >= 0 > new y or y <= 0 < new y``; the mass then
rests at the wall, the crossing point interpolated as the reference does). ``dynamics="semi-implicit"`` (an
earlier version: velocities first) is kept for comparison; docs/comparisons.md gives both measured. The step noise comes
from the level's own generator (seeded by the level seed), so a task and a level seed replay the same episode
under the same actions, whatever generator ``reset(seed)`` was given. Action: force in [-10, 10]^2. Reward per
step: exp(-0.6 * distance to the goal); horizon 100 steps (truncation), so returns lie in (0, 100].
Success: the final distance to the goal is below 0.25 (``info["is_success"]`` on the final step).

TeachMyAgent's "mostly infeasible" challenge on the point mass (:class:`PointMassInfeasibleEnv`, registered as
``point-mass-infeasible``): ``gate_width`` spans [-24, 8], and a gate of width <= 0 is closed. The mass starts
above the wall and the goal lies below it, so every way to the goal crosses the wall's line, and every crossing
outside the gate ends the episode (``|x - gate_x| > width / 2`` holds for any x when the width is <= 0): no policy
solves a closed gate; the best it can do there is to hover above the wall (a return of about 15 of 100). Widths in
(0, 8] are the point mass's own tasks, so 75% of the space (uniformly) cannot be solved; the test sets are the
point mass's own (every gate open), and ``closed`` holds 24 closed gates. :meth:`PointMassInfeasibleEnv.feasible`
tells the open gates; a run counts the share of its episodes on the others (``infeasible_share`` in
``metrics.json``, ``infeasible %`` in a comparison's report).

A student that must find the gate with its own sensors (privileged-teacher distillation): ``task_visible=False,
gate_sensor=R`` hides the task and appends three readings to the state, ``[seen, left edge - x, right edge - x]``,
non-zero only while the mass is above the wall within ``R`` of it (``0 <= y <= R``); friction stays hidden and
can be told from the velocity's response to the force (``history``, see :mod:`environments.history`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from curriculum.spaces import BoxTaskSpace
from environments.base import ParametricEnv, check_observation_mode

START = (0.0, 3.0)
GOAL = (0.0, -3.0)
SUCCESS_DISTANCE = 0.25
DYNAMICS = ("spdl", "semi-implicit")


class PointMassGateEnv(ParametricEnv):
    """Point-mass gate (see the module docstring).

    :param task_visible: append the task (gate_x, gate_width, friction) to the observation
    :param observation_mode: ``plain`` (an array) or ``privileged`` (``{"student": state, "privileged": task}``)
    :param horizon: steps per episode before truncation
    :param render_mode: ``rgb_array`` or None
    :param dynamics: ``spdl`` (explicit Euler: the reference) or ``semi-implicit``
    :param gate_sensor: range above the wall within which the state includes the gate's edges (0: no sensor)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}  # type: ignore[misc]  # gymnasium types it per instance
    task_space = BoxTaskSpace(["gate_x", "gate_width", "friction"], [-4.0, 0.5, 0.0], [4.0, 8.0, 4.0])
    default_task = np.array([2.5, 0.5, 0.0])  # SPDL's target: a narrow gate off-centre
    return_bounds = (0.0, 100.0)
    success_threshold = math.nan  # success is a distance rule, see is_success
    success_rule = f"final distance to the goal < {SUCCESS_DISTANCE}"
    #: ACCEL's start: gates wide (>= 4) and near the centre, low friction
    easy_task_space = BoxTaskSpace(["gate_x", "gate_width", "friction"], [-1.0, 4.0, 0.0], [1.0, 8.0, 1.0])
    #: SPDL's initial and target task distributions (mean, std per dimension), from Klink et al. 2020
    spdl_initial = (np.array([0.0, 4.25, 2.0]), np.array([2.0, 1.875, 1.0]))
    spdl_target = (np.array([2.5, 0.5, 0.0]), np.array([4e-3, 3.75e-3, 2e-3]))  # point_mass_experiment.py
    target_distribution = spdl_target
    #: the test set a run also plays at its end and reports apart (SPDL's target gate)
    target_set = "target"
    state_attrs = ("gate_x", "gate_width", "friction", "x", "y", "vx", "vy", "steps", "crashed", "_trajectory", "_noise")

    def __init__(
        self,
        task_visible: bool = True,
        observation_mode: str = "plain",
        horizon: int = 100,
        render_mode: str | None = None,
        dynamics: str = "spdl",
        gate_sensor: float = 0.0,
    ) -> None:
        if dynamics not in DYNAMICS:
            raise ValueError(f"unknown dynamics '{dynamics}'; valid: {', '.join(DYNAMICS)}")
        if not (isinstance(gate_sensor, int | float) and 0.0 <= gate_sensor <= 8.0):
            raise ValueError(f"gate_sensor must be a range in [0, 8] (0: no sensor), got {gate_sensor!r}")
        self.gate_sensor = float(gate_sensor)
        self.dynamics = dynamics
        self.task_visible = task_visible
        self.observation_mode = check_observation_mode(observation_mode)
        self.horizon = horizon
        self.render_mode = render_mode
        state_dim = 4 + (3 if task_visible else 0) + (3 if self.gate_sensor else 0)
        state_space = gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32)
        if observation_mode == "privileged":
            self.observation_space = gym.spaces.Dict(
                {"student": state_space, "privileged": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)}
            )
        else:
            self.observation_space = state_space
        self.action_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
        self._trajectory: list[tuple[float, float]] = []

    def set_state(self, state: dict[str, Any]) -> None:
        """As :meth:`ParametricEnv.set_state`; a state saved before the step noise came from the level's generator
        is refused (ValueError)."""
        if "_task_info" in state and "_noise" not in state:
            raise ValueError("a point-mass state saved by an earlier teachrl (its step noise had another source)")
        super().set_state(state)

    # -- gymnasium API ------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._noise = self._begin_episode()  # the level's generator: the step noise of this episode
        self.gate_x, self.gate_width, self.friction = (float(v) for v in self.task)
        self.x, self.y = START
        self.vx = self.vy = 0.0
        self.steps = 0
        self.crashed = False
        self._trajectory = [(self.x, self.y)]
        return self._observation(), self.task_info()

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        fx = min(max(float(action[0]), -10.0), 10.0)
        fy = min(max(float(action[1]), -10.0), 10.0)
        self._move(fx, fy, self._noise.normal(0.0, 0.05, 20).tolist())
        return self._observation(), *self._end_step()

    def _move(self, fx: float, fy: float, noise: list[float]) -> None:
        """The step's ten Euler sub-steps under the force (fx, fy), ``noise`` holding the sub-steps' (x, y) noise."""
        x, y, vx, vy, mu = self.x, self.y, self.vx, self.vy, self.friction
        half_gate = 0.5 * self.gate_width
        explicit = self.dynamics == "spdl"
        for i in range(10):
            ax = 1.5 * fx - mu * vx + noise[2 * i]
            ay = 1.5 * fy - mu * vy + noise[2 * i + 1]
            if explicit:  # SPDL: positions move with the velocity the sub-step starts with
                new_x = min(max(x + 0.01 * vx, -4.0), 4.0)
                new_y = min(max(y + 0.01 * vy, -4.0), 4.0)
                vx += 0.01 * ax
                vy += 0.01 * ay
                crossed = y >= 0.0 > new_y or y <= 0.0 < new_y  # SPDL's rule, both directions
            else:
                vx += 0.01 * ax
                vy += 0.01 * ay
                new_x = min(max(x + 0.01 * vx, -4.0), 4.0)
                new_y = min(max(y + 0.01 * vy, -4.0), 4.0)
                crossed = (y > 0.0) != (new_y > 0.0)
            if crossed:  # crossed the wall this sub-step
                frac = (0.0 - y) / (new_y - y) if y != new_y else 0.0
                x_cross = frac * new_x + (1 - frac) * x  # the reference's interpolation, term for term
                if abs(x_cross - self.gate_x) > half_gate:
                    self.crashed = True
                    x, y = x_cross, 0.0
                    if explicit:  # SPDL's crash state: at the wall, at rest
                        vx = vy = 0.0
                    break
            x, y = new_x, new_y
        self.x, self.y, self.vx, self.vy = x, y, vx, vy

    def _end_step(self) -> tuple[float, bool, bool, dict[str, Any]]:
        """Count the step just moved; its reward, termination, truncation and ``info``."""
        self.steps += 1
        self._trajectory.append((self.x, self.y))
        distance = math.hypot(self.x - GOAL[0], self.y - GOAL[1])
        reward = math.exp(-0.6 * distance)
        terminated = self.crashed
        truncated = self.steps >= self.horizon
        info = self.task_info()
        info["distance"] = distance
        if terminated or truncated:
            info["is_success"] = (not self.crashed) and distance < SUCCESS_DISTANCE
        return reward, terminated, truncated, info

    @classmethod
    def step_batch(
        cls, envs: Sequence[PointMassGateEnv], actions: np.ndarray
    ) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every env of ``envs`` (built with the same arguments) with its row of ``actions``, in one numpy pass.

        The same transitions, float for float, as each env's :meth:`step`: each env draws its noise from its own
        generator, and the sub-steps run the same operations in the same order on arrays. An env whose path
        crosses the wall's line during the step (rare: once an episode at most) is moved again by its own
        :meth:`_move`, which handles the gate and the crash. Returns ``(observations, rewards, terminated,
        truncated, infos)``, the observations batched (an array, or a dict of arrays in privileged mode).
        """
        force = np.clip(np.asarray(actions, dtype=np.float64), -10.0, 10.0)  # (N, 2)
        noise = np.stack([env._noise.normal(0.0, 0.05, 20) for env in envs])  # (N, 20): each env's own stream
        pos = np.array([(env.x, env.y) for env in envs])
        vel = np.array([(env.vx, env.vy) for env in envs])
        mu = np.array([env.friction for env in envs])[:, None]
        push, noise = 1.5 * force, noise.reshape(len(envs), 10, 2)
        heights = np.empty((11, len(envs)))
        heights[0] = pos[:, 1]
        explicit = envs[0].dynamics == "spdl"
        for i in range(10):
            acc = push - mu * vel + noise[:, i]
            if explicit:
                pos = np.minimum(np.maximum(pos + 0.01 * vel, -4.0), 4.0)
                vel = vel + 0.01 * acc
            else:
                vel = vel + 0.01 * acc
                pos = np.minimum(np.maximum(pos + 0.01 * vel, -4.0), 4.0)
            heights[i + 1] = pos[:, 1]
        if explicit:  # both directions, as _move
            before, after = heights[:-1], heights[1:]
            crossed = ((before >= 0.0) & (after < 0.0)) | ((before <= 0.0) & (after > 0.0))
        else:
            crossed = (heights[:-1] > 0.0) != (heights[1:] > 0.0)
        near_wall = np.asarray(np.any(crossed, axis=0))
        rewards, terminated, truncated, infos = np.empty(len(envs)), np.empty(len(envs), bool), np.empty(len(envs), bool), []
        for k, env in enumerate(envs):
            if near_wall[k]:
                env._move(float(force[k, 0]), float(force[k, 1]), noise[k].reshape(-1).tolist())
                pos[k], vel[k] = (env.x, env.y), (env.vx, env.vy)
            else:
                env.x, env.y, env.vx, env.vy = float(pos[k, 0]), float(pos[k, 1]), float(vel[k, 0]), float(vel[k, 1])
            rewards[k], terminated[k], truncated[k], info = env._end_step()
            infos.append(info)
        tasks = np.array([env.task for env in envs])
        return envs[0]._batch_observation(np.concatenate([pos, vel], axis=1), tasks), rewards, terminated, truncated, infos

    def _batch_observation(self, state: np.ndarray, tasks: np.ndarray) -> Any:
        """:meth:`_observation` of a batch: ``state`` rows (x, y, vx, vy), ``tasks`` rows (gate_x, width, friction)."""
        columns = [state]
        if self.task_visible:
            columns.append(tasks)
        if self.gate_sensor:
            half, x, y = 0.5 * tasks[:, 1], state[:, 0], state[:, 1]
            seen = (0.0 <= y) & (y <= self.gate_sensor)
            edges = np.stack([np.ones_like(x), tasks[:, 0] - half - x, tasks[:, 0] + half - x], axis=1)
            columns.append(np.where(seen[:, None], edges, 0.0))
        obs = np.concatenate(columns, axis=1).astype(np.float32)
        if self.observation_mode == "privileged":
            return {"student": obs, "privileged": tasks.astype(np.float32)}
        return obs

    def is_success(self, episode_return: float, final_info: dict[str, Any] | None = None) -> bool:
        """Success is read from the final step's ``info["is_success"]`` (final distance < 0.25, no crash)."""
        return bool(final_info and final_info.get("is_success", False))

    def _observation(self) -> Any:
        state = [self.x, self.y, self.vx, self.vy]
        if self.task_visible:
            state += [self.gate_x, self.gate_width, self.friction]
        if self.gate_sensor:
            half, seen = 0.5 * self.gate_width, 0.0 <= self.y <= self.gate_sensor
            state += [1.0, self.gate_x - half - self.x, self.gate_x + half - self.x] if seen else [0.0, 0.0, 0.0]
        obs = np.array(state, dtype=np.float32)
        if self.observation_mode == "privileged":
            return {"student": obs, "privileged": self.task.astype(np.float32)}
        return obs

    # -- test sets ------------------------------------------------------------------------------------------
    def _test_sets(self) -> dict[str, np.ndarray]:
        """``narrow``: 24 gates of width 0.75 at x = -3.5..3.5 (8 positions) with friction 0, 1, 2 (the target
        region); ``grid``: a 3 x 3 x 3 grid over the whole space; ``default``: both (51 tasks); ``target``: SPDL's
        target, 10 tasks drawn from its distribution (:attr:`spdl_target`, seed 0, clipped to the bounds), held out
        and reported apart from the test set (:attr:`target_set`)."""
        narrow = [(x, 0.75, mu) for mu in (0.0, 1.0, 2.0) for x in np.linspace(-3.5, 3.5, 8)]
        grid = [(x, w, mu) for x in (-3.0, 0.0, 3.0) for w in (1.0, 4.0, 7.0) for mu in (0.5, 2.0, 3.5)]
        mean, std = self.spdl_target
        target = PointMassGateEnv.task_space.clip(np.random.default_rng(0).normal(mean, std, (10, 3)))
        return {"default": np.array(narrow + grid), "narrow": np.array(narrow), "grid": np.array(grid), "target": target}

    # -- rendering ------------------------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return render_point_mass(self.gate_x, self.gate_width, self._trajectory)


class PointMassInfeasibleEnv(PointMassGateEnv):
    """The point mass with mostly infeasible tasks: gate widths in [-24, 8], closed at <= 0 (see the module
    docstring). Test sets as :class:`PointMassGateEnv`'s (every gate open), plus ``closed``: 24 closed gates
    (widths -1, -8, -16, -24 at x = -3, 0, 3, friction 0 and 2).

    Measured (PPO with the point-mass defaults, seed 0; ``cli.py compare --env point-mass-infeasible --teachers
    random,alp-gmm --seeds 0 --steps 300000``): no teacher learns here at a CPU budget yet. At 300k steps
    random and ALP-GMM both master 0% of the test gates: their students learn to hover above the wall, which is
    learnable on a closed gate too (returns from about 5 to 15), and ALP-GMM, drawn by that progress, plays closed
    gates more than random does (80% of its episodes against 76%). With the reward paid only below the wall (so
    that a closed gate returns 0 to every policy), both students never get below it within 200k steps (0% and a
    test return of 0), and ALP-GMM still plays 83% closed gates. The challenge is kept for longer budgets.
    """

    task_space = BoxTaskSpace(["gate_x", "gate_width", "friction"], [-4.0, -24.0, 0.0], [4.0, 8.0, 4.0])

    @staticmethod
    def feasible(tasks: np.ndarray) -> np.ndarray:  # type: ignore[override]  # fills the declared optional callable
        """Which rows of ``tasks`` can be solved: the open gates (width > 0)."""
        return np.asarray(tasks, dtype=np.float64).reshape(-1, 3)[:, 1] > 0.0

    def _test_sets(self) -> dict[str, np.ndarray]:
        closed = [(x, w, mu) for w in (-1.0, -8.0, -16.0, -24.0) for x in (-3.0, 0.0, 3.0) for mu in (0.0, 2.0)]
        return {**super()._test_sets(), "closed": np.array(closed)}


def render_point_mass(gate_x: float, gate_width: float, trajectory: list[tuple[float, float]], size: int = 240) -> np.ndarray:
    """An RGB picture of the arena: wall with its gate, start, goal and the trajectory so far."""
    img = np.full((size, size, 3), 245, dtype=np.uint8)
    scale = size / 8.0

    def px(x: float, y: float) -> tuple[int, int]:
        col = round((x + 4.0) * scale)
        row = round((4.0 - y) * scale)
        return min(max(row, 0), size - 1), min(max(col, 0), size - 1)

    wall_row = px(0, 0)[0]
    for col in range(size):
        x = col / scale - 4.0
        if abs(x - gate_x) > gate_width / 2:
            img[max(wall_row - 2, 0) : wall_row + 3, col] = (60, 60, 60)
    for (x, y), colour in ((START, (40, 90, 220)), (GOAL, (30, 170, 60))):
        r, c = px(x, y)
        img[max(r - 5, 0) : r + 6, max(c - 5, 0) : c + 6] = colour
    for (x0, y0), (x1, y1) in itertools.pairwise(trajectory):
        for t in np.linspace(0.0, 1.0, 8):
            r, c = px(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
            img[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = (220, 50, 50)
    return img
