"""Privileged-teacher distillation (DAgger): labels, learning, the dataset, the saved student, bad input, resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from click.testing import CliRunner
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from cli import cli
from curriculum.spaces import BoxTaskSpace
from environments.base import ParametricEnv, check_observation_mode
from environments.history import FrameHistory
from environments.registry import make_env
from students.run.distill import BetaSchedule, Dataset, DistillConfig, DistillError, Distiller, distill
from students.run.train import RunConfig, train

ROOT = Path(__file__).resolve().parents[1]
TOY = "tests.test_distill:ToyEnv"
#: the toy expert's action: W @ the student's state (it ignores the privileged task)
W = np.array([[0.8, -0.5], [0.3, 0.9]], dtype=np.float32)


class ToyEnv(ParametricEnv):
    """Each step shows a random state s in [-1, 1]^2; the best action is W s (reward -|a - W s|), 10 steps."""

    task_space: ClassVar[BoxTaskSpace] = BoxTaskSpace(["t"], [0.0], [1.0])
    default_task = np.array([0.5])
    return_bounds = (-30.0, 0.0)
    success_threshold = -2.0
    state_attrs = ("state", "steps")

    def __init__(self, observation_mode: str = "plain", render_mode=None):
        self.observation_mode = check_observation_mode(observation_mode)
        student = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        privileged = gym.spaces.Dict({"student": student, "privileged": gym.spaces.Box(0.0, 1.0, (1,), np.float32)})
        self.observation_space = privileged if observation_mode == "privileged" else student
        self.action_space = gym.spaces.Box(-3.0, 3.0, (2,), np.float32)

    def _obs(self):
        if self.observation_mode == "privileged":
            return {"student": self.state.copy(), "privileged": self.task.astype(np.float32)}
        return self.state.copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._begin_episode()
        self.state, self.steps = self.np_random.uniform(-1, 1, 2).astype(np.float32), 0
        return self._obs(), self.task_info()

    def step(self, action):
        reward = -float(np.abs(np.asarray(action) - W @ self.state).sum())
        self.state, self.steps = self.np_random.uniform(-1, 1, 2).astype(np.float32), self.steps + 1
        return self._obs(), reward, False, self.steps >= 10, self.task_info()

    @classmethod
    def _test_sets(cls):
        return {"default": np.array([[0.2], [0.8]])}


@pytest.fixture(scope="module")
def expert(tmp_path_factory) -> Path:
    """A linear expert on the privileged dict: action = W @ student part (the weights on the task are zero)."""
    env = DummyVecEnv([lambda: ToyEnv(observation_mode="privileged")])
    model = PPO("MultiInputPolicy", env, policy_kwargs={"net_arch": {"pi": [], "vf": []}}, n_steps=64, batch_size=64)
    with th.no_grad():  # features: the dict's entries in key order, privileged (1) then student (2)
        model.policy.action_net.weight.copy_(th.tensor(np.hstack([np.zeros((2, 1)), W]), dtype=th.float32))
        model.policy.action_net.bias.zero_()
    path = tmp_path_factory.mktemp("expert") / "model.zip"
    model.save(path)
    return path


def toy_config(expert: Path, **settings) -> DistillConfig:
    base = {"expert": str(expert), "env": TOY, "steps": 600, "n_envs": 2, "rollout_steps": 200, "eval_every": 600}
    base["hp"] = {"policy_kwargs": {"net_arch": [32, 32]}}
    return DistillConfig(**{**base, **settings})


def test_beta_schedules_and_bad_ones():
    assert [BetaSchedule.parse("linear:4")(r) for r in (0, 1, 4, 9)] == [1.0, 0.75, 0.0, 0.0]
    assert [BetaSchedule.parse("exp:0.5")(r) for r in (0, 1, 3)] == [1.0, 0.5, 0.125]
    assert BetaSchedule.parse("0")(7) == 0.0 and BetaSchedule.parse(0.3)(2) == 0.3
    for bad in ("linear:0", "exp:2", "1.5", "cosine:3", "linear:x"):
        with pytest.raises(DistillError, match="bad beta schedule .*valid: linear:ROUNDS, exp:P"):
            BetaSchedule.parse(bad)


def test_dataset_is_a_bounded_fifo():
    data = Dataset(10, 2, 1)
    indices = [data.add(np.full(2, k), np.full(1, k)) for k in range(25)]
    assert len(data) == 10 and data.obs.shape == (10, 2) and data.obs.dtype == np.float32
    assert sorted(data.actions[:, 0].tolist()) == list(range(15, 25))  # the 10 newest
    data.set_return(indices[3], 7.0)  # long gone: ignored, nothing overwritten
    data.set_return(indices[20], 5.0)
    assert np.isnan(data.returns).sum() == 9 and data.returns[20 % 10] == 5.0


def spied_fit(distiller: Distiller) -> tuple[int, list[np.ndarray]]:
    """Run one fit; return its optimizer steps and the row orders its random draws gave."""
    calls, rows = [], []
    step, permutation, choice = distiller.optimizer.step, distiller.rng.permutation, distiller.rng.choice
    distiller.optimizer.step = lambda *a: (calls.append(1), step(*a))[1]
    distiller.rng = type("Spy", (), {})()
    distiller.rng.permutation = lambda n: (rows.append(permutation(n)), rows[-1])[1]
    distiller.rng.choice = lambda n, size, replace: (rows.append(choice(n, size=size, replace=replace)), rows[-1])[1]
    distiller.fit()
    return len(calls), rows


def test_the_fit_costs_one_rounds_worth_whatever_the_dataset_holds(expert, tmp_path):
    """fit=round: each epoch draws rollout_steps rows (no repeats) from the whole dataset; fit=dataset: all of them."""
    steps, seen = {}, {}
    for fit in ("round", "dataset"):
        distiller = Distiller(toy_config(expert, fit=fit, epochs=2, batch_size=50, dataset_size=1000).resolve(), tmp_path)
        distiller.start()
        for _ in range(5):  # 5 rounds of 200 states: the dataset holds 1,000
            distiller.collect()
        steps[fit], seen[fit] = spied_fit(distiller)
        distiller.close()
    assert steps == {"round": 2 * 200 // 50, "dataset": 2 * 1000 // 50}
    for rows in seen["round"]:
        assert len(rows) == len(set(rows)) == 200 and rows.min() >= 0 and rows.max() < 1000
    assert sorted(seen["dataset"][0]) == list(range(1000))
    assert len(np.unique(np.concatenate(seen["round"]))) > 300  # drawn from the whole dataset, not the newest round
    with pytest.raises(DistillError, match="unknown fit 'all'; valid: round, dataset"):
        toy_config(expert, fit="all").resolve()


def test_beta_one_executes_the_experts_actions(expert, tmp_path):
    config = toy_config(expert, beta="1").resolve()
    distiller = Distiller(config, tmp_path)
    executed = []
    for env in distiller.envs:
        step = env.step
        env.step = lambda action, step=step: (executed.append(np.array(action)), step(action))[1]
    distiller.start()
    distiller.collect()
    labels = distiller.dataset.actions[: len(distiller.dataset)]
    assert distiller.expert_steps == distiller.steps == 200
    np.testing.assert_allclose(np.array(executed), labels, atol=1e-6)  # in collection order: step, then env
    states = distiller.dataset.obs[: len(distiller.dataset)]
    np.testing.assert_allclose(labels, states @ W.T, atol=1e-5)  # every label is the expert's action there
    distiller.close()


def test_the_student_learns_a_linear_expert(expert, tmp_path):
    metrics = distill(toy_config(expert, steps=4000, rollout_steps=400, beta="linear:3", epochs=4), tmp_path / "run")
    student = PPO.load(tmp_path / "run" / "model.zip", device="cpu")
    states = np.random.default_rng(0).uniform(-1, 1, (500, 2)).astype(np.float32)
    error = np.abs(student.predict(states, deterministic=True)[0] - states @ W.T).mean()
    fresh = toy_config(expert).resolve()
    untrained = Distiller(fresh, tmp_path / "fresh").model
    before = np.abs(untrained.predict(states, deterministic=True)[0] - states @ W.T).mean()
    assert error < 0.05 < before / 4, (error, before)
    assert metrics["distill"]["action_loss"] < 0.01 and metrics["distill"]["expert_action_share"] < 0.5
    assert metrics["final_eval"]["mean_return"] > -2.0  # 10 steps of |a - W s| summed over 2 actions


def test_saved_student_is_plain_sb3_reading_only_the_student_view(expert, tmp_path):
    distill(toy_config(expert, history=3), tmp_path / "run")
    student = PPO.load(tmp_path / "run" / "model.zip", device="cpu")
    env = make_env(TOY, history=3)
    assert student.observation_space == env.observation_space == gym.spaces.Box(-np.inf, np.inf, (12,), np.float32)
    obs, _ = env.reset(seed=0)
    assert student.predict(obs, deterministic=True)[0].shape == (2,)
    run = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert run["student"] == "dagger" and run["algo"] == "ppo" and run["env_kwargs"] == {"history": 3}
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "run")])  # eval reads it as any run
    assert result.exit_code == 0, result.output
    final = yaml.safe_load((tmp_path / "run" / "metrics.json").read_text())["final_eval"]
    assert f"mean return {final['mean_return']:.2f}" in result.output


def test_history_frames_hold_observations_and_previous_actions():
    space, actions = gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Box(-1, 1, (1,), np.float32)
    history = FrameHistory(space, actions, 3)
    first = history.reset(np.array([1.0, 2.0]))
    assert first.tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 0]
    second = history.push(np.array([3.0, 4.0]), np.array([5.0]))  # the action is clipped as the env applies it
    assert second.tolist() == [0, 0, 0, 1, 2, 0, 3, 4, 1]
    with pytest.raises(ValueError, match="history needs a flat array observation"):
        FrameHistory(gym.spaces.Dict({"a": space}), actions, 2)
    with pytest.raises(ValueError, match="history must be an integer >= 1"):
        FrameHistory(space, actions, 0)


def test_point_mass_student_senses_the_gate_only_near_the_wall():
    env = make_env("point-mass", task_visible=False, gate_sensor=2.0)
    env.set_task([2.5, 0.5, 0.0])
    obs, _ = env.reset(seed=0)
    assert obs.shape == (7,) and obs[4:].tolist() == [0.0, 0.0, 0.0]  # at y = 3: out of range
    while obs[1] > 2.0:
        assert obs[4] == 0.0
        obs, *_ = env.step(np.array([0.0, -3.0]))
    assert 0.0 <= obs[1] <= 2.0 and obs[4] == 1.0
    np.testing.assert_allclose(obs[5:], [2.25 - obs[0], 2.75 - obs[0]], atol=1e-5)
    privileged = make_env("point-mass", task_visible=False, gate_sensor=2.0, observation_mode="privileged")
    assert privileged.observation_space["student"] == env.observation_space


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_mismatched_expert_or_history_is_one_line_and_writes_nothing(expert, tmp_path):
    out = tmp_path / "out"
    plain_expert = tmp_path / "plain.zip"
    PPO("MlpPolicy", DummyVecEnv([lambda: make_env("point-mass")]), n_steps=64, batch_size=64).save(plain_expert)
    cases = [
        (["--expert", str(plain_expert), "--env", TOY], "expert '"),
        (["--expert", str(expert), "--env", "point-mass"], "the environment's privileged view is Dict"),
        (["--expert", str(expert), "--env", TOY, "--history", "-1"], "history must be an integer >= 0"),
        (["--expert", str(expert), "--env", TOY, "--beta", "linear:0"], "bad beta schedule"),
        (["--expert", str(expert), "--env", TOY, "--teacher", "plr"], "needs the student's positive_value_loss"),
        (["--expert", str(tmp_path / "missing"), "--env", TOY], "does not exist"),
        (["--expert", str(expert)], "is not in a run folder: give its environment with --env"),
        (["--env", TOY], "no expert given (--expert RUN_DIR or model.zip)"),
    ]
    before = _files(tmp_path)
    for args, message in cases:
        result = CliRunner().invoke(cli, ["distill", *args, "--out", str(out)])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and len(result.output.strip().splitlines()) == 1, (args, result.output)
    assert _files(tmp_path) == before


def test_resume_after_kill_9_continues_exactly(expert, tmp_path):
    args = [sys.executable, str(ROOT / "cli.py"), "distill", "--expert", str(expert), "--env", TOY, "--n-envs", "2"]
    args += ["--steps", "4000", "--rollout-steps", "200", "--checkpoint-every", "400", "--eval-every", "2000"]
    args += ["--hp", "policy_kwargs={net_arch: [16]}"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run([*args, "--out", str(whole)], check=True, cwd=ROOT, capture_output=True)
    proc = subprocess.Popen([*args, "--out", str(cut)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (cut / "checkpoint" / "progress.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "model.zip").exists(), "killed too late: the run had finished"
    subprocess.run([*args, "--out", str(cut), "--resume"], check=True, cwd=ROOT, capture_output=True)
    a, b = (PPO.load(folder / "model.zip", device="cpu").policy.state_dict() for folder in (whole, cut))
    assert all(th.equal(a[key], b[key]) for key in a)
    assert (whole / "eval.csv").read_bytes() == (cut / "eval.csv").read_bytes()


def test_a_folder_from_before_the_fit_setting_resumes_as_it_ran(expert, tmp_path):
    """A distill.yaml without ``fit`` was written when every pass fitted the whole dataset: it resumes with
    ``fit=dataset`` and is refused, naming the difference, with the new default."""
    distill(toy_config(expert, fit="dataset", steps=400, checkpoint_every=200), tmp_path / "run")
    saved = tmp_path / "run" / "distill.yaml"
    settings = yaml.safe_load(saved.read_text())
    del settings["fit"]
    saved.write_text(yaml.safe_dump(settings, sort_keys=False))
    with pytest.raises(DistillError, match=r"other settings \(fit: dataset there, round asked; steps: 400 there"):
        distill(toy_config(expert, steps=600, checkpoint_every=200), tmp_path / "run", resume=True)
    metrics = distill(toy_config(expert, fit="dataset", steps=400, checkpoint_every=200), tmp_path / "run", resume=True)
    assert metrics["timesteps"] >= 400


def test_finetuning_starts_from_the_distilled_student(expert, tmp_path):
    distill(toy_config(expert), tmp_path / "run")
    config = RunConfig(
        env=TOY,
        teacher="random",
        student="dagger-ft",
        algo="ppo",
        steps=64,
        n_envs=1,
        eval_every=64,
        device="cpu",
        init_model=str(tmp_path / "run" / "model.zip"),
        hp_overrides={"learning_rate": "0", "n_steps": "64", "batch_size": "64", "policy_kwargs": "{net_arch: [32, 32]}"},
    )
    train(config, tmp_path / "ft")
    paths = (tmp_path / "run" / "model.zip", tmp_path / "ft" / "model.zip")
    a, b = (PPO.load(path, device="cpu").policy.state_dict() for path in paths)
    assert all(th.equal(a[key], b[key]) for key in a)  # learning rate 0: the student it started from


def test_cli_expert_distill_and_finetune_end_to_end(tmp_path):
    view = ["--env-kwarg", "task_visible=false", "--env-kwarg", "gate_sensor=2.0"]
    small = ["--hp", "n_steps=128", "--hp", "batch_size=64"]
    expert = tmp_path / "expert"
    args = ["run", "--env", "point-mass", "--teacher", "random", "--steps", "256", "--n-envs", "2", "--eval-every", "256"]
    result = CliRunner().invoke(cli, [*args, "--obs", "privileged", *view, *small, "--device", "cpu", "--out", str(expert)])
    assert result.exit_code == 0, result.output
    observed = PPO.load(expert / "model.zip", device="cpu").observation_space
    assert isinstance(observed, gym.spaces.Dict) and observed["student"].shape == (7,) and observed["privileged"].shape == (3,)
    student = tmp_path / "student"
    args = ["distill", "--expert", str(expert), "--steps", "400", "--rollout-steps", "200", "--history", "2"]
    args += ["--eval-every", "400", "--finetune-steps", "256", "--teacher", "alp-gmm", *small, "--out", str(student)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    distilled = yaml.safe_load((student / "config.yaml").read_text())
    assert distilled["env_kwargs"] == {"task_visible": False, "gate_sensor": 2.0, "history": 2}  # the expert's view
    tuned = yaml.safe_load((tmp_path / "student-ft" / "config.yaml").read_text())
    assert tuned["student"] == "dagger-ft" and tuned["init_model"] == str(student / "model.zip")
    assert tuned["teacher"] == "alp-gmm" and tuned["env_kwargs"] == distilled["env_kwargs"]
    # PPO collects whole rollouts: 4 envs x 128 steps >= the 256 asked
    assert yaml.safe_load((tmp_path / "student-ft" / "metrics.json").read_text())["timesteps"] == 512


def test_a_distillation_logs_to_tensorboard_as_any_run(expert, tmp_path):
    from tests.test_what_runs import eval_by_step, tensorboard_scalars

    metrics = distill(toy_config(expert, steps=600, rollout_steps=200, eval_every=200), tmp_path / "run")
    tb = tmp_path / "run" / "tb"
    losses = tensorboard_scalars(tb, "distill/action_loss")
    assert [step for step, _ in losses] == [200, 400, 600]
    assert losses[-1][1] == pytest.approx(metrics["distill"]["action_loss"], rel=1e-5)
    assert [v for _, v in tensorboard_scalars(tb, "distill/beta")] == pytest.approx([1.0, 14 / 15, 13 / 15])
    assert all(v >= 0 for _, v in tensorboard_scalars(tb, "distill/expert_gap"))
    shares = [v for _, v in tensorboard_scalars(tb, "distill/expert_action_share")]
    assert shares[0] == 1.0 and len(shares) == 3
    by_step = eval_by_step(tmp_path / "run" / "eval.csv")
    assert [s for s, _ in tensorboard_scalars(tb, "eval/mastered_pct")] == list(by_step) == [200, 400, 600]
    assert tensorboard_scalars(tb, "eval/mean_return")[-1][1] == pytest.approx(metrics["final_eval"]["mean_return"], abs=1e-4)
