import itertools
import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import cli
from curriculum.spaces import TaskSpaceError
from environments.point_mass import PointMassGateEnv
from environments.registry import ENVIRONMENTS, UnknownEnvironmentError, describe_env, make_env
from environments.walkers.hexagon_tracks import HexagonTracksEnv
from environments.walkers.stump_tracks import StumpTracksEnv

RL_ENVS = [name for name, entry in ENVIRONMENTS.items() if entry.trainable]


def build(name: str, **kwargs):
    short = {"max_episode_steps": 60} if "tracks" in name else {}  # keep walker episodes short in tests
    return make_env(name, **{**short, **kwargs})


def play_to_end(env, seed: int = 0, max_steps: int = 3000):
    env.action_space.seed(seed)
    info = {}
    for _ in range(max_steps):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            return info
    raise AssertionError("episode did not end")


@pytest.mark.parametrize("name", RL_ENVS)
def test_task_applies_at_next_reset_and_final_info_reports_it(name):
    env = build(name)
    space = env.task_space
    task = space.low + 0.3 * space.span
    env.set_task(task, level_seed=42)
    _, info = env.reset(seed=0)
    np.testing.assert_allclose(info["task"], task)
    assert info["level_seed"] == 42
    env.set_task(space.high)  # chosen mid-episode: applies to the next episode only
    final = play_to_end(env)
    np.testing.assert_allclose(final["task"], task)
    assert final["level_seed"] == 42
    _, info = env.reset()
    np.testing.assert_allclose(info["task"], space.high)
    assert info["level_seed"] != 42  # drawn from the env's generator when not given
    _, info = env.reset()
    np.testing.assert_allclose(info["task"], env.default_task)  # nothing pending: the default task


@pytest.mark.parametrize("name", RL_ENVS)
def test_test_sets_are_fixed_and_in_bounds(name):
    env = build(name)
    for set_name in env.test_set_names():
        tasks = env.test_set(set_name)
        assert tasks.ndim == 2 and tasks.shape[1] == env.task_space.dim and len(tasks) > 0
        assert (tasks >= env.task_space.low).all() and (tasks <= env.task_space.high).all()
        np.testing.assert_array_equal(tasks, build(name).test_set(set_name))
    with pytest.raises(KeyError, match="unknown test set 'nope'; valid: default"):
        env.test_set("nope")


@pytest.mark.parametrize("name", RL_ENVS)
def test_same_seed_same_episode(name):
    def trajectory(seed: int) -> np.ndarray:
        env = build(name)
        env.set_task(env.task_space.low + 0.5 * env.task_space.span, level_seed=7)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(0)
        out = [obs]
        for _ in range(30):
            obs, *_ = env.step(env.action_space.sample())
            out.append(obs)
        return np.array(out)

    np.testing.assert_array_equal(trajectory(1), trajectory(1))


@pytest.mark.parametrize("name", RL_ENVS)
def test_bad_tasks_are_rejected_with_clear_errors(name):
    env = build(name)
    names = env.task_space.names
    cases = [
        (np.zeros(env.task_space.dim + 1), f"has {len(names)} values"),
        (env.task_space.high + 1.0, "is outside its bounds"),
        ({**dict.fromkeys(names, 0.5), "bogus": 1.0}, "unknown dimension.*bogus"),
        (np.full(env.task_space.dim, np.nan), "must be finite"),
    ]
    for task, message in cases:
        with pytest.raises(TaskSpaceError, match=message):
            env.set_task(task)
    with pytest.raises(TaskSpaceError, match="level_seed"):
        env.set_task(env.default_task, level_seed=-1)


@pytest.mark.parametrize("name", RL_ENVS)
def test_registered_with_gymnasium_and_privileged_observations(name):
    entry = ENVIRONMENTS[name]
    env = gym.make(entry.gym_id)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert "task" in info
    privileged = build(name, observation_mode="privileged")
    obs, _ = privileged.reset(seed=0)
    assert set(obs) == {"student", "privileged"}
    assert privileged.observation_space.contains(obs)
    np.testing.assert_allclose(obs["privileged"][: privileged.task_space.dim], privileged.task, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown observation_mode 'x'; valid: plain, privileged"):
        build(name, observation_mode="x")


def go_to_goal(env: PointMassGateEnv, task) -> tuple[float, dict]:
    """A PD controller straight to the goal."""
    env.set_task(task)
    obs, _ = env.reset(seed=0)
    total = 0.0
    while True:
        x, y, vx, vy = obs[:4]
        obs, reward, terminated, truncated, info = env.step(np.array([-4 * x - 2 * vx, 4 * (-3 - y) - 2 * vy]))
        total += reward
        if terminated or truncated:
            return total, info


def test_point_mass_wide_gate_is_passable_and_a_closed_gate_off_centre_crashes():
    env = PointMassGateEnv()
    total, info = go_to_goal(env, [0.0, 6.0, 0.5])
    assert info["is_success"] and not env.crashed and info["distance"] < 0.25
    assert env.is_success(total, info)
    total_narrow, info = go_to_goal(env, [3.5, 0.5, 0.5])
    assert env.crashed and not info["is_success"] and env.steps < 100
    assert abs(env.y) < 1e-9  # stopped at the wall
    assert total_narrow < total / 5


def test_point_mass_friction_slows_the_mass():
    env = PointMassGateEnv()
    speeds = []
    for friction in (0.0, 3.0):
        env.set_task([0.0, 8.0, friction])
        env.reset(seed=0)
        for _ in range(5):
            obs, *_ = env.step(np.array([10.0, 0.0]))
        speeds.append(obs[2])
    assert speeds[0] > 1.5 * speeds[1] > 0


def stump_tops(env: StumpTracksEnv) -> list[float]:
    """Heights above the ground of the stump bodies, measured in the Box2D world by vertical ray casts."""
    from Box2D import b2RayCastCallback

    class Hit(b2RayCastCallback):
        def __init__(self):
            super().__init__()
            self.y = None

        def ReportFixture(self, fixture, point, normal, fraction):
            self.y = point[1]
            return fraction

    from gymnasium.envs.box2d import bipedal_walker as bw

    tops = []
    for body in env.terrain:
        vertices = getattr(body.fixtures[0].shape, "vertices", [])
        if len(vertices) < 3:
            continue  # ground edges
        x = sum(v[0] for v in vertices) / len(vertices)
        hit = Hit()
        env.world.RayCast(hit, (x, 50.0), (x, 0.0))
        tops.append((hit.y - bw.TERRAIN_HEIGHT) / bw.TERRAIN_STEP)
    return tops


def test_stump_tracks_terrain_follows_the_task_and_level_seed():
    env = StumpTracksEnv(max_episode_steps=10)
    measured = {}
    for height in (0.5, 2.5):
        env.set_task([height, 2.0], level_seed=3)
        env.reset(seed=0)
        measured[height] = stump_tops(env)
        assert np.mean(measured[height]) == pytest.approx(height, abs=0.05)
        assert min(measured[height]) >= 0.05 - 1e-6
    assert len(measured[0.5]) == len(measured[2.5])  # spacing alone sets the count
    env.set_task([2.5, 2.0], level_seed=3)
    env.reset(seed=99)
    np.testing.assert_allclose(stump_tops(env), measured[2.5])  # same task + level seed = same terrain
    env.set_task([2.5, 2.0], level_seed=4)
    env.reset(seed=0)
    assert not np.allclose(stump_tops(env), measured[2.5])
    counts = []
    for spacing in (0.0, 5.0):
        env.set_task([1.0, spacing], level_seed=3)
        env.reset(seed=0)
        counts.append(len(env.stump_heights))
    assert counts[0] > 4 * counts[1]


def stump_edges(env: StumpTracksEnv, probe: float) -> list[tuple[float, float]]:
    """(left, right) x of every stump, found by horizontal ray casts just above the ground: rightwards to a stump's
    left face, then leftwards from ``probe`` beyond it to its right face."""
    from Box2D import b2RayCastCallback
    from gymnasium.envs.box2d import bipedal_walker as bw

    class First(b2RayCastCallback):
        def __init__(self):
            super().__init__()
            self.x = None

        def ReportFixture(self, fixture, point, normal, fraction):
            if fixture.body.userData != "grass":  # the ground edges lie along the ray's height only at their ends
                self.x = point[0]
                return fraction
            return -1

    y = bw.TERRAIN_HEIGHT + 0.01
    edges, x, end = [], 0.0, bw.TERRAIN_LENGTH * bw.TERRAIN_STEP
    while True:
        hit = First()
        env.world.RayCast(hit, (x, y), (end, y))
        if hit.x is None:
            return edges
        back = First()
        env.world.RayCast(back, (hit.x + probe, y), (hit.x, y))
        edges.append((hit.x, back.x))
        x = back.x + 1e-4


def test_stump_spacing_is_the_gap_in_world_units():
    from gymnasium.envs.box2d import bipedal_walker as bw

    env = StumpTracksEnv(max_episode_steps=10)
    for spacing in (0.5, 2.0, 6.0):
        env.set_task([1.0, spacing], level_seed=3)
        env.reset(seed=0)
        edges = stump_edges(env, bw.TERRAIN_STEP + spacing / 2)
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(edges)]
        widths = [right - left for left, right in edges]
        assert len(gaps) > 5 and np.allclose(gaps, spacing, atol=1e-3), (spacing, gaps[:5])
        assert np.allclose(widths, bw.TERRAIN_STEP, atol=2e-3)


def test_stump_tracks_variants_and_privileged_terrain_ahead():
    assert StumpTracksEnv(variant="infeasible").task_space.high[0] == 9.0
    assert StumpTracksEnv(variant="trivial").task_space.low[0] == -3.0
    with pytest.raises(ValueError, match="unknown variant 'hard'; valid: default, infeasible, trivial"):
        StumpTracksEnv(variant="hard")
    env = StumpTracksEnv(observation_mode="privileged")
    env.set_task([2.0, 0.0], level_seed=1)
    obs, _ = env.reset(seed=0)
    ahead = obs["privileged"][2:]
    assert np.all(ahead == 0)  # the start pad is flat
    env.hull.position = (20.5 * 14 / 30, env.hull.position[1])  # just before the first stumps
    ahead = env.heights_ahead()
    assert ahead.min() > 1.5 * 14 / 30  # contiguous stumps of ~2 steps ahead


@pytest.mark.parametrize(("body", "obs_dim", "act_dim"), [("short", 24, 4), ("default", 24, 4), ("quadruped", 34, 8)])
def test_walker_bodies(body, obs_dim, act_dim):
    env = StumpTracksEnv(body=body, max_episode_steps=30)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (obs_dim,) and env.action_space.shape == (act_dim,)
    assert len(env.joints) == act_dim and len(env.body.feet) == act_dim // 2
    reach = env.hull.position[1] - min(f.position[1] for f in env.body.feet)  # hull above its lowest foot
    expected = {"short": 17, "default": 34, "quadruped": 51}[body] * 2 / 30
    assert reach == pytest.approx(expected, rel=0.25)
    final = play_to_end(env)
    assert "task" in final
    with pytest.raises(ValueError, match="unknown body 'tall'; valid: short, default, quadruped"):
        StumpTracksEnv(body="tall")


def test_quadruped_hangs_its_leg_pairs_at_both_ends():
    env = StumpTracksEnv(body="quadruped")
    env.reset(seed=0)
    xs = sorted(leg.position[0] - env.hull.position[0] for leg in env.body.segments[0::2])
    assert xs[0] < -0.5 and xs[-1] > 0.5


def test_hexagon_tracks_parameters_move_vertices_and_two_are_irrelevant():
    env = HexagonTracksEnv(max_episode_steps=10)
    base = np.full(12, 1.0)

    def terrain(task):
        env.set_task(task, level_seed=5)
        env.reset(seed=0)
        return np.array(stump_tops(env)), env.terrain_info.height_map.copy()

    tops, heights = terrain(base)
    assert len(tops) > 10 and np.all(tops > 0.5)
    for irrelevant in (1, 3):  # v0_y, v1_y: the ground vertices, pushed into the ground
        task = base.copy()
        task[irrelevant] = 4.0
        other_tops, other_heights = terrain(task)
        np.testing.assert_allclose(other_tops, tops, atol=1e-6)
        np.testing.assert_allclose(other_heights, heights)
    taller = base.copy()
    taller[[7, 9]] = 4.0  # v3_y, v4_y: the top vertices
    taller_tops, _ = terrain(taller)
    assert taller_tops.mean() > tops.mean() + 1.0
    assert HexagonTracksEnv.task_space.names[1] == "v0_y"


def test_user_environment_by_path_and_in_list_envs():
    env = make_env("tests.user_env:make_corridor")
    env.set_task({"length": 2.0})
    env.reset(seed=0)
    env.step(1)
    _, reward, terminated, _, info = env.step(1)
    assert terminated and reward == 1.0 and info["task"][0] == 2.0
    d = describe_env("tests.user_env:CorridorEnv")
    assert d.test_sets == {"default": 3} and "length in [1, 20]" in d.task_space
    result = CliRunner().invoke(cli, ["list", "envs", "--include", "tests.user_env:make_corridor"])
    assert result.exit_code == 0, result.output
    assert "tests.user_env:make_corridor" in result.output and "length in [1, 20]" in result.output
    for name in RL_ENVS:
        assert name in result.output
    with pytest.raises(UnknownEnvironmentError, match="unknown environment 'pointmass'; valid: acrobot, cartpole, "):
        make_env("pointmass")
    with pytest.raises(UnknownEnvironmentError, match="cannot load environment 'tests.user_env:Nope'"):
        make_env("tests.user_env:Nope")


def test_render_cli_writes_pictures_that_show_the_task(tmp_path):
    runner = CliRunner()
    grey = []
    for height in (1, 3):
        out = tmp_path / f"stump{height}.png"
        result = runner.invoke(
            cli, ["render", "--env", "stump-tracks", "--task", f"stump_height={height}", "--out", str(out), "--steps", "5"]
        )
        assert result.exit_code == 0, result.output
        pixels = np.asarray(Image.open(out).convert("RGB"))
        assert pixels.shape == (400, 600, 3)
        grey.append(int(np.all(pixels == (153, 153, 153), axis=2).sum()))  # stump outlines
    assert grey[1] > 1.5 * grey[0] > 0
    gif = tmp_path / "pm.gif"
    result = runner.invoke(
        cli, ["render", "--env", "point-mass", "--task", "gate_width=6", "--out", str(gif), "--steps", "20"]
    )
    assert result.exit_code == 0, result.output
    assert Image.open(gif).n_frames > 3
    for args, message in [
        (["--env", "nope", "--out", "a.png"], "unknown environment 'nope'"),
        (["--env", "point-mass", "--out", "a.jpg"], "must end in .png or .gif"),
        (["--env", "point-mass", "--out", "a.png", "--task", "gate_x=9"], "'gate_x' = 9 is outside its bounds"),
        (["--env", "point-mass", "--out", "a.png", "--task", "width=1"], "unknown dimension 'width'; valid: gate_x"),
        (["--env", "point-mass", "--out", "a.png", "--policy", "missing.zip"], "model 'missing.zip' does not exist"),
    ]:
        result = runner.invoke(cli, ["render", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_point_mass_can_hide_the_task():
    env = PointMassGateEnv(task_visible=False)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,) and env.observation_space.shape == (4,)
    assert PointMassGateEnv().reset(seed=0)[0].shape == (7,)


def test_plugin_environments_from_entry_points(monkeypatch):
    from importlib.metadata import EntryPoint

    import environments.registry as registry

    plugin = EntryPoint("corridor", "tests.user_env:make_corridor", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [plugin] if group == registry.ENTRY_POINT_GROUP else [])
    assert make_env("corridor").task_space.names == ("length",)
    assert "corridor" in [e.name for e in registry.all_entries()]
    result = CliRunner().invoke(cli, ["list", "envs"])
    assert result.exit_code == 0 and "corridor" in result.output


def test_point_mass_follows_spdl_dynamics_by_default():
    from environments.point_mass import PointMassGateEnv

    moved = {}
    for dynamics in ("spdl", "semi-implicit"):
        env = PointMassGateEnv(dynamics=dynamics)
        env.set_task([0.0, 8.0, 0.0])
        env.reset(seed=0)
        obs, *_ = env.step(np.array([0.0, -10.0]))
        moved[dynamics] = 3.0 - float(obs[1])
    # from rest, a = 15: explicit Euler moves 1e-4 * 15 * (0 + 1 + ... + 9), semi-implicit 1e-4 * 15 * (1 + ... + 10)
    assert moved["spdl"] == pytest.approx(0.0675, abs=2e-3) and moved["semi-implicit"] == pytest.approx(0.0825, abs=2e-3)
    for dynamics, crashes in (("spdl", True), ("semi-implicit", True)):  # an upward crossing crashes too
        env = PointMassGateEnv(dynamics=dynamics)
        env.set_task([3.5, 0.5, 0.0])
        env.reset(seed=0)
        env.y, env.vy = -0.05, 2.0  # just below the wall, moving up, far from the gate
        _, _, terminated, _, _ = env.step(np.array([0.0, 0.0]))
        assert terminated == crashes and env.crashed == crashes, dynamics
    with pytest.raises(ValueError, match="unknown dynamics 'rk4'; valid: spdl, semi-implicit"):
        PointMassGateEnv(dynamics="rk4")


def test_a_history_env_declares_what_its_env_declares():
    from environments.base import DECLARED, batch_stepper
    from environments.point_mass import PointMassInfeasibleEnv

    env = make_env("point-mass", history=4)
    assert env.target_set == "target" and env.target_distribution is PointMassGateEnv.target_distribution
    for name in DECLARED:
        assert getattr(env, name) is getattr(env.env, name), name
    assert make_env("point-mass-infeasible", history=2).feasible is PointMassInfeasibleEnv.feasible
    assert make_env("point-mass").feasible is None and not make_env("point-mass").fixed_test_levels
    assert make_env("maze").fixed_test_levels
    # the batched vector env and evaluation step a class that declares step_batch, never a wrapper of one
    assert batch_stepper(make_env("point-mass")) is not None and batch_stepper(env) is None
