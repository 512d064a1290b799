"""SPDL's evaluation protocol (``--target-episodes``): episodes on tasks drawn from the env's target distribution at
every evaluation, stochastic actions, the return discounted at the student's gamma."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import cli
from curriculum.seeding import Streams
from environments.point_mass import PointMassGateEnv
from students.loop.evaluation import TargetProtocol, evaluate
from students.analysis.report import write_report
from students.run.train import RunError, train
from tests.test_runs import interrupt_at, point_mass
from tests.user_env import TaskEchoEnv

ECHO = "tests.user_env:TaskEchoEnv"


def test_the_discounted_return_of_a_scripted_episode_by_hand():
    tasks = np.array([[0.0, 0.5], [0.6, 0.2], [1.0, 1.0]])  # 1, 3 and 5 steps; the reward at the last one
    result = evaluate(lambda obs: np.zeros(1), ECHO, tasks, gamma=0.9)
    expected = [0.9**0 * 5.0, 0.9**2 * 2.6, 0.9**4 * 11.0]
    assert [r.discounted_return for r in result.results] == pytest.approx(expected, abs=1e-12)
    assert [r.episode_return for r in result.results] == pytest.approx([5.0, 2.6, 11.0], abs=1e-12)
    assert result.mean_discounted_return == pytest.approx(np.mean(expected), abs=1e-12)


def test_the_batched_point_mass_discounts_each_episode_as_one_played_alone():
    tasks = PointMassGateEnv().test_set("grid")[:6]
    policy = lambda obs: np.tanh(np.asarray(obs)[..., :2] * np.array([-0.3, 0.2]))  # noqa: E731
    batched = evaluate(policy, "point-mass", tasks, seed=3, gamma=0.95)
    for task, result in zip(tasks, batched.results, strict=True):
        env = PointMassGateEnv()
        env.set_task(task, level_seed=3)
        obs, _ = env.reset(seed=3)
        total, discount, done = 0.0, 1.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs[None])[0])
            total, discount, done = total + discount * reward, discount * 0.95, terminated or truncated
        assert result.discounted_return == pytest.approx(total, rel=1e-9, abs=1e-9)


def test_the_draws_depend_on_the_step_alone_and_follow_the_target_distribution():
    mean, std = PointMassGateEnv.target_distribution
    space = PointMassGateEnv.task_space
    protocol = TargetProtocol(5000, mean, std, space.low, space.high, seed=7, csv_path=None)
    tasks, seed = protocol.draws(1000)
    again, seed_again = protocol.draws(1000)
    assert np.array_equal(tasks, again) and seed == seed_again
    assert not np.array_equal(tasks, protocol.draws(2000)[0])
    # psclklnk's GaussianSampler: normal draws clipped to the bounds (the width's and friction's means sit on their
    # lower bounds, so half of those draws are clipped onto them)
    assert abs(tasks[:, 0].mean() - mean[0]) < 5 * std[0] / np.sqrt(5000)
    assert tasks[:, 0].std() == pytest.approx(std[0], rel=0.05)
    for k in (1, 2):
        assert tasks[:, k].min() == space.low[k] and np.mean(tasks[:, k] == space.low[k]) == pytest.approx(0.5, abs=0.03)
        above = tasks[:, k][tasks[:, k] > space.low[k]] - mean[k]
        assert np.sqrt(np.mean(above**2)) == pytest.approx(std[k], rel=0.05)  # a half-normal of the same std


def test_the_protocol_neither_moves_the_training_nor_the_test_set_and_resumes_exactly(tmp_path):
    plain = train(point_mass("ppo", "random", 1500), tmp_path / "plain")
    config = point_mass("ppo", "random", 1500, target_episodes=8)
    whole = train(config, tmp_path / "exp" / "point-mass" / "random" / "ppo" / "seed0")
    assert {k: v for k, v in whole.items() if k != "target_protocol"} == plain
    run = tmp_path / "exp" / "point-mass" / "random" / "ppo" / "seed0"
    assert (run / "eval.csv").read_bytes() == (tmp_path / "plain" / "eval.csv").read_bytes()
    rows = (run / "eval_target.csv").read_text().splitlines()
    assert rows[0] == "timesteps,episodes,discounted_return,return,success_pct,trained_steps"
    assert [int(r.split(",")[0]) for r in rows[1:]] == [512, 1024, 1536] and {r.split(",")[1] for r in rows[1:]} == {"8"}
    final = whole["target_protocol"]
    assert final["episodes"] == 8 and final["gamma"] == 0.95
    assert f"{final['discounted_return']:.4f}" == rows[-1].split(",")[2]
    assert 0 < final["discounted_return"] < final["mean_return"]  # rewards of later steps count less
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(700))
    resumed = train(config, tmp_path / "cut", resume=True)
    assert resumed == whole
    for name in ("eval_target.csv", "eval.csv", "metrics.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (run / name).read_bytes(), name
    # the report: SPDL's figure and the final protocol's columns
    summary, shown, _ = write_report(tmp_path / "exp")
    assert summary["protocol_return_mean"].item() == pytest.approx(final["discounted_return"], abs=1e-12)
    assert shown[0]["target-distribution discounted return"] == f"{final['discounted_return']:.2f} ± -"
    assert (tmp_path / "exp" / "point-mass_ppo_target.png").stat().st_size > 0
    assert "![target-distribution protocol](point-mass_ppo_target.png)" in (tmp_path / "exp" / "report.md").read_text()


def test_the_protocol_draws_its_own_seeds():
    streams = Streams(0)
    assert streams.target not in {streams.teacher, streams.student, streams.evaluation, streams.env(0)}


def test_an_env_without_a_target_distribution_is_refused_in_one_line(tmp_path):
    with pytest.raises(RunError, match="names no target distribution"):
        point_mass("ppo", "random", 600, env=ECHO, target_episodes=5).resolve()
    result = CliRunner().invoke(
        cli, ["run", "--env", ECHO, "--teacher", "random", "--target-episodes", "5", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "names no target distribution" in result.output
    assert not (tmp_path / "x").exists() and TaskEchoEnv.target_distribution is None
    result = CliRunner().invoke(
        cli, ["run", "--env", "point-mass", "--teacher", "random", "--target-episodes", "-1", "--out", str(tmp_path / "y")]
    )
    assert result.exit_code == 2 and "target_episodes must be an integer >= 0" in result.output


def test_a_run_records_the_setting_and_a_resume_must_match_it(tmp_path):
    train(point_mass("ppo", "random", 600), tmp_path / "run")
    assert "target_episodes: 0" in (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(RunError, match="target_episodes"):
        train(point_mass("ppo", "random", 1200, target_episodes=4), tmp_path / "run", resume=True)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()).get("target_protocol") is None
