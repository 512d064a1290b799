"""A level-based maze on MiniGrid (the ``minigrid`` package): UED's home benchmark, for the regret and learnability
teachers (PLR, Robust PLR, ACCEL, SFL).

A level is a square room whose border is wall; inside, ``n_walls`` wall blocks and ``n_lava`` lava cells, the
agent's start (cell and heading) and the goal. The task is ``(n_walls, n_lava)`` (rounded to whole numbers); the
level seed places everything, so a teacher that replays a ``(task, level seed)`` pair replays the very same maze
(:meth:`layout`). Levels are solvable by construction: a layout whose goal cannot be reached from the start is
drawn again from the same generator (the reference generators of dcd do not check; its unsolvable levels would
only waste a CPU budget).

The agent sees the ``view x view`` cells in front of it (MiniGrid's egocentric partial view, walls opaque only with
``see_through_walls=False``) as one-hot object types, plus its heading: a flat vector an MLP reads. Actions: turn
left, turn right, forward (MiniGrid's first three). Reward, as MiniGrid and dcd: ``1 - 0.9 * steps / max_steps``
on reaching the goal, 0 otherwise; stepping into lava ends the episode. Success: the goal was reached.

Sizes: dcd's mazes are 15 x 15 with up to 25 or 60 blocks, 250 steps and a 5 x 5 view. The defaults here are a
9 x 9 room (7 x 7 inside) with up to 20 blocks and 4 lava cells, 64 steps, a 5 x 5 view: what PPO learns on a CPU in
minutes (docs/benchmarks.md has the measurement). ``size=15, max_walls=60, max_lava=1, max_steps=250`` comes nearest dcd's
(``max_lava`` must be at least 1, a task dimension needs a range: a generated level may hold one lava cell, which
dcd's never do; structured levels, the named mazes and PAIRED's have none).

Test set (``default``): 33 held-out mazes, the same whatever the run's seed (``fixed_test_levels``: evaluated on
level seed 0): 0 to 20 walls in steps of 2 crossed with 0, 2 and 4 lava cells (at the defaults' bounds; scaled to
``max_walls`` and ``max_lava``); ``no-lava``: the 11 without lava.
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal, Lava, Wall
from minigrid.minigrid_env import MiniGridEnv

from curriculum.spaces import BoxTaskSpace
from environments.base import ParametricEnv, check_observation_mode
from environments.maze_levels import LAVA, WALL, LevelError, MazeBuilder, MazeLevel, named_mazes

#: MiniGrid's object type indices run 0..10 (unseen, empty, wall, floor, door, key, ball, box, goal, lava, agent)
N_OBJECT_TYPES = 11
N_ACTIONS = 3  # left, right, forward


def _mission() -> str:
    return "reach the goal"


class _Room(MiniGridEnv):
    """The MiniGrid world a :class:`MazeEnv` level is built in (its layout set before each reset)."""

    def __init__(self, size: int, view: int, max_steps: int, see_through_walls: bool, render_mode: str | None) -> None:
        self.walls: list[tuple[int, int]] = []
        self.lava: list[tuple[int, int]] = []
        self.start, self.heading, self.goal = (1, 1), 0, (size - 2, size - 2)
        super().__init__(
            mission_space=MissionSpace(mission_func=_mission),
            grid_size=size,
            max_steps=max_steps,
            see_through_walls=see_through_walls,
            agent_view_size=view,
            render_mode=render_mode,
        )

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        for x, y in self.walls:
            self.grid.set(x, y, Wall())
        for x, y in self.lava:
            self.grid.set(x, y, Lava())
        self.put_obj(Goal(), *self.goal)
        self.agent_pos, self.agent_dir = self.start, self.heading
        self.mission = _mission()


class MazeEnv(ParametricEnv):
    """A MiniGrid maze level per task and level seed (see the module docstring).

    :param size: the room's side, border included
    :param max_walls: the largest number of wall blocks (the task space's bound)
    :param max_lava: the largest number of lava cells (>= 1)
    :param max_steps: steps before truncation
    :param view: the side of the agent's egocentric view (odd, >= 3)
    :param see_through_walls: MiniGrid's option (False: walls hide what lies behind them)
    :param render_mode: ``rgb_array`` or None
    :param observation_mode: ``plain`` (the view) or ``privileged`` (``{"student": view, "privileged": [n_walls,
        n_lava, agent x, agent y, goal x, goal y]}``, positions divided by the size: what the view does not show)
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}  # type: ignore[misc]  # gymnasium types it per instance
    return_bounds = (0.0, 1.0)
    success_threshold = 0.0  # any reward means the goal was reached
    success_rule = "reached the goal"
    default_task = np.array([10.0, 2.0])
    fixed_test_levels = True  # the test mazes do not depend on the run's evaluation seed
    structured_levels = True  # set_level plays a MazeLevel; infos carry the played level's text
    level_type = MazeLevel
    # the MiniGrid world (grid, agent, step count), the level set for the next reset and the one being played
    state_attrs = ("room", "_pending_level", "level")

    def __init__(
        self,
        size: int = 9,
        max_walls: int = 20,
        max_lava: int = 4,
        max_steps: int = 64,
        view: int = 5,
        see_through_walls: bool = True,
        render_mode: str | None = None,
        observation_mode: str = "plain",
    ) -> None:
        inside = (size - 2) ** 2
        if not (isinstance(size, int) and 5 <= size <= 32):
            raise ValueError(f"size must be a whole number in [5, 32], got {size!r}")
        if not (0 <= max_walls and 1 <= max_lava and max_walls + max_lava <= inside - 2):
            raise ValueError(
                f"max_walls >= 0 and max_lava >= 1 must leave the start and goal free: at most {inside - 2} in all "
                f"for size {size}, got {max_walls} + {max_lava}"
            )
        if not (isinstance(view, int) and view >= 3 and view % 2 == 1):
            raise ValueError(f"view must be an odd whole number >= 3, got {view!r}")
        self.size, self.view, self.render_mode = size, view, render_mode
        self.task_space = BoxTaskSpace(["n_walls", "n_lava"], [0.0, 0.0], [float(max_walls), float(max_lava)])
        self.default_task = self.task_space.clip(type(self).default_task)  # 10 walls and 2 lava cells where they fit
        # ACCEL starts from nearly empty rooms: up to an eighth of the walls, no lava (n_lava < 0.5 rounds to 0)
        self.easy_task_space = BoxTaskSpace(["n_walls", "n_lava"], [0.0, 0.0], [max(1.0, max_walls / 8), 0.49])
        self.room = _Room(size, view, max_steps, see_through_walls, render_mode)
        self.observation_mode = check_observation_mode(observation_mode)
        view_space = gym.spaces.Box(0.0, 1.0, (view * view * N_OBJECT_TYPES + 4,), np.float32)
        if observation_mode == "privileged":
            privileged = gym.spaces.Box(0.0, float(max(max_walls, max_lava, 1)), (6,), np.float32)
            self.observation_space = gym.spaces.Dict({"student": view_space, "privileged": privileged})
        else:
            self.observation_space = view_space
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.layout_cache: dict[tuple[int, int, int], tuple[Any, ...]] = {}
        self._pending_level: MazeLevel | None = None
        self.level: MazeLevel | None = None  # the level being played (after the first reset)

    # -- levels -------------------------------------------------------------------------------------------------
    def layout(self, task: np.ndarray, level_seed: int) -> tuple[list, list, tuple[int, int], int, tuple[int, int]]:
        """The maze of a task and level seed: (walls, lava cells, start, heading, goal), solvable, always the same.

        Cells are drawn without replacement from the room's inside by ``SeedSequence([level_seed, walls, lava])``;
        a layout whose goal the start cannot reach (4-connected, around walls and lava) is drawn again.
        """
        n_walls, n_lava = (round(float(v)) for v in task)
        rng = np.random.default_rng(np.random.SeedSequence([level_seed, n_walls, n_lava]))
        cells = [(x, y) for y in range(1, self.size - 1) for x in range(1, self.size - 1)]
        for _ in range(1000):
            order = rng.permutation(len(cells))
            chosen = [cells[i] for i in order[: n_walls + n_lava + 2]]
            start, goal = chosen[0], chosen[1]
            walls, lava = chosen[2 : 2 + n_walls], chosen[2 + n_walls :]
            heading = int(rng.integers(4))
            if _reachable(start, goal, set(walls) | set(lava), self.size):
                return walls, lava, start, heading, goal
        raise RuntimeError(f"no solvable maze with {n_walls} walls and {n_lava} lava cells in 1000 draws")

    @classmethod
    def named_levels(cls) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
        """dcd's named test mazes (:func:`~environments.maze_levels.named_mazes`), each with the keywords of a maze
        that plays it: its size and dcd's step limit (``2 * size * size``)."""
        return {name: (maze.levels, level_kwargs(maze.levels[0], maze.max_steps)) for name, maze in named_mazes().items()}

    def level_builder(self, n_blocks: int | None = None, goal_last: bool = False) -> MazeBuilder:
        """A builder of this maze's levels, one placement at a time (PAIRED's adversary: dcd's rules), placing
        ``n_blocks`` walls (``None``: ``max_walls``)."""
        return MazeBuilder(self.size, int(self.task_space.high[0]) if n_blocks is None else n_blocks, goal_last)

    def level_of(self, task: np.ndarray, level_seed: int) -> MazeLevel:
        """The level a task and level seed generate (:meth:`layout`), as a structure."""
        return _as_level(self.size, *self.layout(task, level_seed))

    def set_level(self, level: MazeLevel | str, level_seed: int | None = None) -> None:
        """Make the next reset play ``level`` (a :class:`MazeLevel` or its text) instead of generating one, under
        ``level_seed`` (``None``: one drawn as for a task); its task is then ``(walls, lava cells)`` as counted in
        it, clipped to the task space (an edited level may hold more walls than a generated one).

        :raises LevelError: not a level, or one of another size than this env's
        """
        level = MazeLevel.parse(level) if isinstance(level, str) else level
        if not isinstance(level, MazeLevel):
            raise LevelError(f"set_level takes a MazeLevel or its text, got {type(level).__name__}")
        if level.size != self.size:
            raise LevelError(f"a level of size {level.size} in a maze of size {self.size}: make it with size={level.size}")
        self._pending_task, self._pending_seed = None, self._checked_seed(level_seed)
        self._pending_level = level

    def played_level(self) -> str | None:
        """The text of the level being played (``None`` before the first reset)."""
        return self._level_info()["level"] if getattr(self, "_task_info", None) is not None else None

    # -- gymnasium API ------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        level, self._pending_level = self._pending_level, None
        if level is not None:  # the structure itself: its task is what it holds
            self._pending_task = self.task_space.clip(level.task)
        self._begin_episode()
        room = self.room
        if level is None:
            walls, lava = (round(float(v)) for v in self.task)
            key = (self.level_seed, walls, lava)
            if key not in self.layout_cache:  # a replayed level is not drawn again
                if len(self.layout_cache) > 10_000:
                    self.layout_cache.clear()
                self.layout_cache[key] = self.layout(self.task, self.level_seed)
            room.walls, room.lava, room.start, room.heading, room.goal = self.layout_cache[key]
            self.level = None  # built from its layout only when an info asks for it
        else:
            room.walls = [(x + 1, y + 1) for y, x in zip(*np.nonzero(level.walls), strict=True)]
            room.lava = [(x + 1, y + 1) for y, x in zip(*np.nonzero(level.lava), strict=True)]
            room.start, room.heading, room.goal = level.start, level.heading, level.goal
            self.level = level
        obs, _ = room.reset(seed=self.level_seed)
        return self._observation(obs), self._level_info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, _ = self.room.step(int(action))
        if terminated or truncated:
            info = self._level_info()
            info["is_success"] = bool(float(reward) > 0)
        else:
            info = self.task_info()
        return self._observation(obs), float(reward), terminated, truncated, info

    def _level_info(self) -> dict[str, Any]:
        """The task info with ``level``: the text of the level being played (an episode's first and last infos)."""
        if self.level is None:
            room = self.room
            self.level = _as_level(self.size, room.walls, room.lava, room.start, room.heading, room.goal)
        return {**self.task_info(), "level": self.level.text}

    def _observation(self, obs: dict[str, Any]) -> Any:
        types = obs["image"][:, :, 0].reshape(-1)
        flat = np.zeros((types.size, N_OBJECT_TYPES), dtype=np.float32)
        flat[np.arange(types.size), types] = 1.0
        heading = np.zeros(4, dtype=np.float32)
        heading[obs["direction"]] = 1.0
        view = np.concatenate([flat.reshape(-1), heading])
        if self.observation_mode != "privileged":
            return view
        places = np.array([*self.room.agent_pos, *self.room.goal], dtype=np.float32) / self.size
        return {"student": view, "privileged": np.concatenate([np.round(self.task).astype(np.float32), places])}

    def render(self) -> np.ndarray | None:
        return self.room.render() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self.room.close()

    # -- test sets ----------------------------------------------------------------------------------------------
    def _test_sets(self) -> dict[str, np.ndarray]:
        high = self.task_space.high
        walls = np.round(np.linspace(0, high[0], 11))
        lava = np.round(np.linspace(0, high[1], 3))
        grid = [(w, v) for v in lava for w in walls]
        return {"default": np.array(grid), "no-lava": np.array([(w, 0.0) for w in walls])}


def level_kwargs(level: MazeLevel, max_steps: int | None = None) -> dict[str, Any]:
    """The keywords of a maze that plays ``level`` itself: its size, task bounds that any level of that size fits
    (a level set itself is not bounded by them), and ``max_steps`` when given."""
    inside = (level.size - 2) ** 2
    limit = {} if max_steps is None else {"max_steps": max_steps}
    return {"size": level.size, "max_walls": inside - 3, "max_lava": 1, **limit}


def _as_level(
    size: int,
    walls: list[tuple[int, int]],
    lava: list[tuple[int, int]],
    start: tuple[int, int],
    heading: int,
    goal: tuple[int, int],
) -> MazeLevel:
    """A layout's cells (full-grid ``(x, y)``) as a :class:`MazeLevel`."""
    rows = [["."] * (size - 2) for _ in range(size - 2)]
    for cells, kind in ((walls, WALL), (lava, LAVA)):
        for x, y in cells:
            rows[y - 1][x - 1] = kind
    return MazeLevel(tuple("".join(row) for row in rows), (start[0], start[1]), heading, (goal[0], goal[1]))


def _reachable(start: tuple[int, int], goal: tuple[int, int], blocked: set[tuple[int, int]], size: int) -> bool:
    """Whether ``goal`` can be walked to from ``start`` inside the room's border, around ``blocked`` cells."""
    seen, queue = {start}, deque([start])
    while queue:
        x, y = queue.popleft()
        if (x, y) == goal:
            return True
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if 0 < nx < size - 1 and 0 < ny < size - 1 and (nx, ny) not in blocked and (nx, ny) not in seen:
                seen.add((nx, ny))
                queue.append((nx, ny))
    return False
