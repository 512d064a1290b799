"""The MiniGrid maze: levels are a function of (task, level seed), solvable, with MiniGrid's reward and success, a
held-out test set that does not depend on the run's seed, and a run that trains on it."""

from collections import deque

import numpy as np
import pytest

from environments.maze import MazeEnv
from environments.registry import make_env
from students.loop.evaluation import evaluate
from students.run.train import RunConfig, train

HEADINGS = [(1, 0), (0, 1), (-1, 0), (0, -1)]  # MiniGrid's agent_dir 0..3: right, down, left, up


def shortest_action(env: MazeEnv) -> int:
    """The action on a shortest walk to the goal (breadth-first over cells, then turn or go forward)."""
    room = env.room
    blocked = set(room.walls) | set(room.lava)
    start, goal = tuple(int(v) for v in room.agent_pos), room.goal
    previous, queue = {goal: None}, deque([goal])
    while queue:  # from the goal, so that each cell knows its next step toward it
        cell = queue.popleft()
        for dx, dy in HEADINGS:
            nxt = (cell[0] + dx, cell[1] + dy)
            if 0 < nxt[0] < env.size - 1 and 0 < nxt[1] < env.size - 1 and nxt not in blocked and nxt not in previous:
                previous[nxt] = cell
                queue.append(nxt)
    step = previous[start]
    wanted = HEADINGS.index((step[0] - start[0], step[1] - start[1]))
    if wanted == room.agent_dir:
        return 2
    return 1 if wanted == (room.agent_dir + 1) % 4 else 0


def test_a_level_is_the_same_maze_for_the_same_task_and_seed_and_always_solvable():
    env = MazeEnv()
    for n_walls, n_lava, seed in [(0, 0, 1), (20, 4, 2), (13.6, 1.2, 3), (20, 4, 99)]:
        walls, lava, start, heading, goal = env.layout(np.array([n_walls, n_lava]), seed)
        assert (len(walls), len(lava)) == (round(n_walls), round(n_lava))
        assert len({*walls, *lava, start, goal}) == len(walls) + len(lava) + 2  # distinct cells
        assert env.layout(np.array([n_walls, n_lava]), seed) == (walls, lava, start, heading, goal)
    assert env.layout(np.array([20, 4]), 2) != env.layout(np.array([20, 4]), 3)


@pytest.mark.parametrize("task", [(0.0, 0.0), (20.0, 4.0), (12.0, 2.0)])
def test_the_shortest_walk_reaches_the_goal_with_minigrids_reward(task):
    env = MazeEnv()
    for level_seed in range(5):
        env.set_task(np.array(task), level_seed=level_seed)
        _, info = env.reset(seed=level_seed)
        assert info["level_seed"] == level_seed and np.array_equal(info["task"], task)
        steps, done = 0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(shortest_action(env))
            steps, done = steps + 1, terminated or truncated
        assert terminated and info["is_success"] and env.is_success(reward, info)
        assert reward == pytest.approx(1 - 0.9 * steps / 64)


def test_lava_ends_the_episode_without_reward():
    env = MazeEnv()
    for level_seed in range(50):  # a level whose start faces a lava cell
        env.set_task(np.array([0.0, 4.0]), level_seed=level_seed)
        env.reset(seed=0)
        x, y = env.room.start
        dx, dy = HEADINGS[env.room.heading]
        if (x + dx, y + dy) in env.room.lava:
            _, reward, terminated, _, info = env.step(2)
            assert terminated and reward == 0.0 and not info["is_success"]
            return
    pytest.fail("no level with lava ahead of the start in 50 seeds")


def test_the_held_out_mazes_do_not_depend_on_the_runs_seed():
    tasks = make_env("maze").test_set()
    assert len(tasks) == 33 and len({tuple(t) for t in tasks}) == 33
    rng_free = evaluate(lambda obs: 2, "maze", tasks, seed=0)  # always forward: a deterministic policy
    assert [r.episode_return for r in evaluate(lambda obs: 2, "maze", tasks, seed=12345).results] == [
        r.episode_return for r in rng_free.results
    ]


def test_a_ppo_run_with_plr_trains_on_the_maze(tmp_path):
    config = RunConfig(
        env="maze",
        teacher="plr",
        steps=2048,
        eval_every=1024,
        device="cpu",
        n_envs=4,
        hp_overrides={"n_steps": "128", "batch_size": "256"},
        teacher_params={"buffer_size": 8},
    )
    metrics = train(config, tmp_path / "run")
    assert metrics["timesteps"] == 2048 and metrics["final_eval"]["tasks"] == 33
    assert metrics["teacher_updates"] == metrics["episodes_reported"] + metrics["episodes_cut"]
    assert metrics["episodes_reported"] > 20
