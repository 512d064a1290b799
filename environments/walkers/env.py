"""Parametric walker tracks on gymnasium's BipedalWalker physics: any body, any terrain generator.

Reward as BipedalWalker: forward progress (about 300 for a full track), -100 when the hull touches the
ground or the walker leaves the track backwards, and a small torque penalty. Observation: hull angle and
velocities (4), per leg hip/knee angles and speeds and foot contact (5 each), 10 lidar rays (24 floats for
a biped, 34 for the quadruped); actions: hip and knee torque per leg in [-1, 1]. Episodes are truncated
after ``max_episode_steps`` (2000). Success: return > 230. The terrain and the initial push both come from the
level's generator, so a task and a level seed replay the same episode under the same actions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import Box2D
import gymnasium as gym
import numpy as np
from Box2D.b2 import contactListener
from gymnasium.envs.box2d import bipedal_walker as bw
from gymnasium.utils import EzPickle

from environments.base import ParametricEnv, ReplayCopies, check_observation_mode
from environments.walkers.bodies import BODIES, Body, BodySpec, build_body
from environments.walkers.terrain import STEP, Terrain

N_AHEAD = 10  # terrain steps of privileged "terrain ahead"
TerrainGenerator = Callable[[Box2D.b2World, np.ndarray, np.random.Generator], Terrain]


class _Contacts(contactListener):
    """Hull contact ends the episode; foot contacts feed the observation."""

    def __init__(self, env: WalkerEnv) -> None:
        contactListener.__init__(self)
        self.env = env

    def _bodies(self, contact: Any) -> tuple[Any, Any]:
        return contact.fixtureA.body, contact.fixtureB.body

    def BeginContact(self, contact: Any) -> None:
        bodies = self._bodies(contact)
        if self.env.hull in bodies:
            self.env.game_over = True
        for foot in self.env.body.feet:
            if foot in bodies:
                foot.ground_contact = True

    def EndContact(self, contact: Any) -> None:
        bodies = self._bodies(contact)
        for foot in self.env.body.feet:
            if foot in bodies:
                foot.ground_contact = False


class _Lidar(Box2D.b2.rayCastCallback):
    def ReportFixture(self, fixture: Any, point: Any, normal: Any, fraction: float) -> float:
        if (fixture.filterData.categoryBits & 1) == 0:
            return -1
        self.p2 = point
        self.fraction = fraction
        return fraction


class WalkerEnv(ReplayCopies, ParametricEnv, bw.BipedalWalker):
    """A walker on a parametric track (subclasses set the task space, default task, generator and test sets).

    :param body: embodiment: ``short``, ``default`` or ``quadruped``
    :param observation_mode: ``plain`` (an array) or ``privileged`` (``{"student": array, "privileged":
        [task..., obstacle heights at the next 10 terrain steps]}``)
    :param max_episode_steps: steps before truncation
    :param render_mode: ``rgb_array`` (headless) or None
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": bw.FPS}  # type: ignore[misc]  # gymnasium types it per instance
    return_bounds = (-150.0, 350.0)
    success_threshold = 230.0
    success_rule = "episode return > 230"
    generator: ClassVar[TerrainGenerator]

    def __init__(
        self,
        body: str = "default",
        observation_mode: str = "plain",
        max_episode_steps: int = 2000,
        render_mode: str | None = None,
    ) -> None:
        if body not in BODIES:
            raise ValueError(f"unknown body '{body}'; valid: {', '.join(BODIES)}")
        bw.BipedalWalker.__init__(self, render_mode=render_mode, hardcore=False)
        # pickling (gymnasium's EzPickle) rebuilds the env from these, not from BipedalWalker's own arguments
        EzPickle.__init__(
            self, body=body, observation_mode=observation_mode, max_episode_steps=max_episode_steps, render_mode=render_mode
        )
        self.spec_body: BodySpec = BODIES[body]
        self.observation_mode = check_observation_mode(observation_mode)
        self.max_episode_steps = max_episode_steps
        high = np.full(self.spec_body.observation_dim, np.inf, dtype=np.float32)
        plain = gym.spaces.Box(-high, high)
        if observation_mode == "privileged":
            extra = gym.spaces.Box(-np.inf, np.inf, (self.task_space.dim + N_AHEAD,), np.float32)
            self.observation_space = gym.spaces.Dict({"student": plain, "privileged": extra})
        else:
            self.observation_space = plain
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.spec_body.action_dim,), np.float32)
        self.terrain_info = Terrain()

    # -- episode -------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        gym.Env.reset(self, seed=seed)  # seed first: the level seed is drawn from this generator
        level_rng = self._begin_episode()
        self._destroy()
        self.world.contactListener_bug_workaround = _Contacts(self)
        self.world.contactListener = self.world.contactListener_bug_workaround
        self.game_over = False
        self.prev_shaping = None
        self.scroll = 0.0
        self.lidar_render = 0
        self.steps = 0

        self.terrain_info = type(self).generator(self.world, self.task, level_rng)
        self.terrain = list(reversed(self.terrain_info.bodies))
        self.terrain_poly = self.terrain_info.ground_polys
        self._generate_clouds()

        leg_h = self.spec_body.leg_h
        init_x = STEP * bw.TERRAIN_STARTPAD / 2
        self.body: Body = build_body(self.world, self.spec_body, init_x, bw.TERRAIN_HEIGHT + 2 * leg_h)
        self.hull, self.legs, self.joints = self.body.hull, self.body.segments, self.body.joints
        # the initial push from the level's generator too: a task and a level seed replay the same episode
        self.hull.ApplyForceToCenter((level_rng.uniform(-bw.INITIAL_RANDOM, bw.INITIAL_RANDOM), 0), True)
        self.drawlist = self.terrain + self.legs + [self.hull]
        self.lidar = [_Lidar() for _ in range(10)]
        obs, *_ = self._physics_step(np.zeros(self.spec_body.action_dim))
        return self._observation(obs), self.task_info()

    def _copy_arguments(self) -> dict[str, Any]:
        return dict(self._ezpickle_kwargs)

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self._record_action(action)
        obs, reward, terminated = self._physics_step(np.asarray(action, dtype=np.float64))
        self.steps += 1
        truncated = self.steps >= self.max_episode_steps and not terminated
        return self._observation(obs), reward, terminated, truncated, self.task_info()

    def _physics_step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        torque = self.spec_body.motors_torque
        clipped = np.clip(action, -1.0, 1.0)
        for i, joint in enumerate(self.joints):
            speed = bw.SPEED_HIP if i % 2 == 0 else bw.SPEED_KNEE
            joint.motorSpeed = float(speed * np.sign(clipped[i]))
            joint.maxMotorTorque = float(torque * abs(clipped[i]))
        self.world.Step(1.0 / bw.FPS, 6 * 30, 2 * 30)

        hull = self.body.hull  # self.hull is the same body, typed Optional by gymnasium
        pos, vel = hull.position, hull.linearVelocity
        for i, ray in enumerate(self.lidar):
            ray.fraction = 1.0
            ray.p1 = pos
            ray.p2 = (pos[0] + math.sin(1.5 * i / 10.0) * bw.LIDAR_RANGE, pos[1] - math.cos(1.5 * i / 10.0) * bw.LIDAR_RANGE)
            self.world.RayCast(ray, ray.p1, ray.p2)
        state = [
            hull.angle,
            2.0 * hull.angularVelocity / bw.FPS,
            0.3 * vel.x * (bw.VIEWPORT_W / bw.SCALE) / bw.FPS,
            0.3 * vel.y * (bw.VIEWPORT_H / bw.SCALE) / bw.FPS,
        ]
        for leg in range(self.spec_body.n_legs):
            hip, knee = self.joints[2 * leg], self.joints[2 * leg + 1]
            state += [
                hip.angle,
                hip.speed / bw.SPEED_HIP,
                knee.angle + 1.0,
                knee.speed / bw.SPEED_KNEE,
                1.0 if self.body.feet[leg].ground_contact else 0.0,
            ]
        state += [ray.fraction for ray in self.lidar]
        self.scroll = pos.x - bw.VIEWPORT_W / bw.SCALE / 5

        shaping = 130 * pos[0] / bw.SCALE - 5.0 * abs(state[0])
        reward = 0.0 if self.prev_shaping is None else shaping - self.prev_shaping
        self.prev_shaping = shaping
        # torque penalty normalised per leg pair, so every body pays the same for the same effort
        reward -= 0.00035 * bw.MOTORS_TORQUE * float(np.abs(clipped).sum()) * 4 / len(clipped)
        terminated = False
        if self.game_over or pos[0] < 0:
            reward, terminated = -100.0, True
        if pos[0] > (bw.TERRAIN_LENGTH - bw.TERRAIN_GRASS) * STEP:
            terminated = True
        return np.array(state, dtype=np.float32), float(reward), terminated

    def heights_ahead(self) -> np.ndarray:
        """Obstacle heights (world units above the ground) at the next ``N_AHEAD`` terrain steps."""
        start = int(self.body.hull.position.x / STEP) + 1
        window = self.terrain_info.height_map[start : start + N_AHEAD]
        return np.pad(window, (0, N_AHEAD - len(window)))

    def _observation(self, obs: np.ndarray) -> Any:
        if self.observation_mode == "privileged":
            return {"student": obs, "privileged": np.concatenate([self.task, self.heights_ahead()]).astype(np.float32)}
        return obs
