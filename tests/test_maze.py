"""The MiniGrid maze: levels are a function of (task, level seed), solvable, with MiniGrid's reward and success, a
held-out test set that does not depend on the run's seed, and a run that trains on it."""

import json
from collections import deque

import numpy as np
import pytest

from minigrid.core.world_object import Goal, Wall

from environments.maze import MazeEnv, level_kwargs
from environments.maze_levels import LevelError, MazeLevel, named_mazes
from environments.registry import make_env
from students.loop.evaluation import evaluate
from students.run.train import RunConfig, RunError, train

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


def _walk(env: MazeEnv) -> tuple[int, int, float, dict]:
    """Follow the shortest walk to the end of the episode: (steps, forward moves, last reward, last info)."""
    steps = forward = 0
    done, reward, info = False, 0.0, {}
    while not done:
        action = shortest_action(env)
        _, reward, terminated, truncated, info = env.step(action)
        steps, forward, done = steps + 1, forward + (action == 2), terminated or truncated
    return steps, forward, reward, info


@pytest.mark.parametrize("name", ["SixteenRooms", "Labyrinth", "Maze", "SmallCorridor"])
def test_a_named_maze_is_played_as_its_structure(name):
    """The stored structure is what MiniGrid builds: its walls, start facing east, goal; the shortest walk takes
    the level's shortest path in forward moves and earns MiniGrid's reward at dcd's step limit."""
    maze = named_mazes()[name]
    level = maze.levels[-1]
    env = MazeEnv(**level_kwargs(level, maze.max_steps))  # task bounds that hold its walls (else clipped to them)
    env.set_level(level)
    _, info = env.reset(seed=0)
    assert info["level"] == level.text and tuple(env.room.agent_pos) == level.start and env.room.agent_dir == 0
    inner = range(1, level.size - 1)
    walls = {(x, y) for x in inner for y in inner if isinstance(env.room.grid.get(x, y), Wall)}
    assert walls == {(x, y) for x in inner for y in inner if level.cell(x, y) == "#"}
    assert isinstance(env.room.grid.get(*level.goal), Goal)
    assert np.array_equal(info["task"], [level.n_walls, 0])
    steps, forward, reward, info = _walk(env)
    assert forward == level.shortest_path() and info["is_success"] and info["level"] == level.text
    assert reward == pytest.approx(1 - 0.9 * steps / maze.max_steps)


def test_a_generated_level_reports_itself_and_the_same_level_gives_the_same_episode():
    env, again = MazeEnv(), MazeEnv()
    task = np.array([14.0, 3.0])
    env.set_task(task, level_seed=7)
    first, info = env.reset(seed=7)
    assert info["level"] == env.level_of(task, 7).text
    again.set_level(info["level"])  # the reported text, set as a structure
    second, replayed = again.reset(seed=7)
    assert np.array_equal(first, second) and replayed["level"] == info["level"]
    actions = np.random.default_rng(0).integers(3, size=40)
    for action in actions:
        a, b = env.step(action), again.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]
        if a[2] or a[3]:
            break
    assert env.reset(seed=1)[1]["level"] != info["level"]  # set_level holds for one reset only: a new level


def test_a_level_that_does_not_fit_is_refused_and_box_envs_have_none():
    with pytest.raises(LevelError, match="a level of size 15 in a maze of size 9: make it with size=15"):
        MazeEnv().set_level(named_mazes()["Maze"].levels[0])
    with pytest.raises(LevelError, match="one agent"):
        MazeEnv().set_level("..G/.../...")
    with pytest.raises(NotImplementedError, match="has no structured levels"):
        make_env("point-mass").unwrapped.set_level(">.G")


def test_a_pending_level_survives_a_state_round_trip():
    level = MazeLevel.parse(">..#.../.#.#.../.#...../.###.#./......./.#.#.../..#...G")
    env, copy = MazeEnv(), MazeEnv()
    env.reset(seed=0)
    env.set_level(level)
    copy.set_state(env.get_state())
    assert copy.reset(seed=3)[1]["level"] == level.text == env.reset(seed=3)[1]["level"]


def test_render_draws_a_named_maze_or_a_level_text_and_refuses_what_has_none(tmp_path):
    from click.testing import CliRunner

    from cli import cli

    runner = CliRunner()
    shown = runner.invoke(cli, ["render", "--env", "maze", "--level", "SmallCorridor:3", "--out", str(tmp_path / "a.png")])
    assert shown.exit_code == 0 and (tmp_path / "a.png").stat().st_size > 0
    assert named_mazes()["SmallCorridor"].levels[3].text in shown.output.replace("\n", "")
    small = runner.invoke(cli, ["render", "--env", "maze", "--level", ">.#/.~./..G", "--out", str(tmp_path / "b.png")])
    assert small.exit_code == 0 and "level >.#/.~./..G" in small.output
    for args, message in [
        (["--env", "maze", "--level", "Nowhere"], "not a level's text nor a named maze; valid names: Maze, Maze2"),
        (["--env", "maze", "--level", "SmallCorridor:10"], "SmallCorridor has levels 0-9"),
        (["--env", "point-mass", "--level", "Maze"], "environment 'point-mass' has no structured levels"),
        (["--env", "maze", "--level", "Maze", "--task", "n_walls=3"], "give --task or --level, not both"),
    ]:
        result = runner.invoke(cli, ["render", *args, "--out", str(tmp_path / "c.png")])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "c.png").exists()


def test_a_maze_student_is_evaluated_zero_shot_on_the_named_mazes(tmp_path, monkeypatch):
    """``eval --named``: every named maze, its levels played with sampled actions; the same figures on a rerun, and
    the caller's torch generator untouched."""
    import torch as th
    from click.testing import CliRunner
    from stable_baselines3 import PPO

    from cli import cli
    from students.loop.evaluation import evaluate_levels

    config = RunConfig(env="maze", teacher="random", steps=256, eval_every=256, device="cpu", n_envs=2)
    config.hp_overrides = {"n_steps": "128", "batch_size": "128"}
    train(config, tmp_path / "run")
    assert list(MazeEnv.named_levels()) == list(named_mazes())
    small = {name: MazeEnv.named_levels()[name] for name in ("MiniMaze", "SmallCorridor")}  # short episodes
    monkeypatch.setattr(MazeEnv, "named_levels", classmethod(lambda cls: small))
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--named", "--episodes", "1", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert list(shown["named"]) == ["MiniMaze", "SmallCorridor"]
    assert shown["named"]["SmallCorridor"]["episodes"] == 10 and shown["named"]["MiniMaze"]["episodes"] == 1
    assert all(0.0 <= row["solved_rate"] <= 1.0 for row in shown["named"].values())
    model = PPO.load(tmp_path / "run" / "model.zip", device="cpu")
    groups = {name: small[name] for name in ("MiniMaze",)}
    before = th.get_rng_state()
    runs = [evaluate_levels(lambda obs: model.predict(obs, deterministic=False)[0], "maze", groups, 3, seed=5) for _ in "ab"]
    assert runs[0] == runs[1] and th.equal(th.get_rng_state(), before)
    refused = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), "--named", "--test-set", "default"])
    assert refused.exit_code == 2 and "give --test-set or --named, not both" in refused.output


def test_runs_play_the_named_mazes_at_the_end_and_the_report_tabulates_them(tmp_path, monkeypatch):
    from students.analysis.report import write_report

    small = {name: MazeEnv.named_levels()[name] for name in ("MiniMaze", "MediumMaze")}  # short episodes
    monkeypatch.setattr(MazeEnv, "named_levels", classmethod(lambda cls: small))
    for teacher, params in (("random", {}), ("plr", {"buffer_size": 4})):
        config = RunConfig(env="maze", teacher=teacher, steps=256, eval_every=256, device="cpu", n_envs=2)
        config.hp_overrides, config.teacher_params, config.named_episodes = {"n_steps": "128", "batch_size": "128"}, params, 3
        train(config, tmp_path / "exp" / "maze" / teacher / "ppo" / "seed0")
    metrics = json.loads((tmp_path / "exp" / "maze" / "plr" / "ppo" / "seed0" / "metrics.json").read_text())
    named = metrics["named_eval"]
    assert named["episodes"] == 3 and list(named["solved_rate"]) == ["MiniMaze", "MediumMaze"]
    assert named["mean_solved_rate"] == pytest.approx(np.mean(list(named["solved_rate"].values())))
    write_report(tmp_path / "exp")
    report = (tmp_path / "exp" / "report.md").read_text()
    assert "Zero-shot on the named test levels" in report and "| teacher | MiniMaze | MediumMaze | mean |" in report
    assert "named solved %" in report
    with pytest.raises(RunError, match="has no named test levels for --named-episodes"):
        RunConfig(env="point-mass", teacher="random", named_episodes=5, device="cpu").resolve()
