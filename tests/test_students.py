import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from cli import cli
from curriculum.base import Feedback
from curriculum.random_teacher import RandomTeacher
from students.loop.curriculum import CurriculumCallback
from students.loop.evaluation import evaluate
from students.run.train import RunConfig, RunError, train
from students.loop.vec_env import make_vec_env
from tests.user_env import TaskEchoEnv

ECHO = "tests.user_env:TaskEchoEnv"


class RecordingTeacher(RandomTeacher):
    """A random teacher that remembers what it sampled and what it was told."""

    def __init__(self, task_space, seed=0, return_bounds=None):
        super().__init__(task_space, seed, return_bounds)
        self.sampled: list[np.ndarray] = []
        self.updates: list[tuple[np.ndarray, Feedback]] = []

    def _sample(self):
        task = super()._sample()
        self.sampled.append(task)
        return task

    def _update(self, task, feedback):
        self.updates.append((task, feedback))


def train_on_echo(n_envs: int, subproc: bool, steps: int = 400, n_steps: int = 16, extra=()):
    env = make_vec_env(ECHO, n_envs, seed=0, subproc=subproc)
    teacher = RecordingTeacher(TaskEchoEnv.task_space, seed=1)
    callback = CurriculumCallback(teacher)
    model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=min(16, n_steps * n_envs), n_epochs=1, seed=0, device="cpu")
    callback.prime(env)
    model.learn(steps, callback=CallbackList([*extra, callback]))
    env.close()
    return teacher, callback


@pytest.mark.parametrize(("n_envs", "subproc"), [(1, False), (3, False), (1, True), (3, True)])
def test_every_episode_is_reported_once_with_the_task_it_played(n_envs, subproc):
    teacher, callback = train_on_echo(n_envs, subproc)
    assert len(teacher.updates) > 50
    for task, feedback in teacher.updates:
        assert feedback.episode_return == pytest.approx(TaskEchoEnv.encoded_return(task), abs=1e-5)
        assert feedback.length == 1 + int(4 * task[0])
        assert feedback.success == (feedback.episode_return > 5.0)
    sampled = {tuple(t) for t in teacher.sampled}
    played = [tuple(t) for t, _ in teacher.updates]
    assert len(set(played)) == len(played)  # each sampled task played (and reported) once at most
    assert set(played) <= sampled
    # every sampled task is played, is being played, or is pending: at most 2 per sub-environment are not reported
    assert len(sampled) - len(played) <= 2 * n_envs
    assert callback.stats.episodes == len(teacher.updates)


def test_same_seed_same_curriculum_dummy_and_subproc_alike():
    first, _ = train_on_echo(3, False, steps=300)
    second, _ = train_on_echo(3, False, steps=300)
    third, _ = train_on_echo(3, True, steps=300)
    seq = [np.array([t for t, _ in teacher.updates]) for teacher in (first, second, third)]
    np.testing.assert_array_equal(seq[0], seq[1])
    np.testing.assert_array_equal(seq[0], seq[2])


class BufferSpy(BaseCallback):
    """Copies PPO's per-step advantages and values (env 0) and the done flags, in rollout order."""

    def __init__(self):
        super().__init__()
        self.advantages, self.values, self.dones = [], [], []
        self._dones = []

    def _on_step(self):
        self._dones.append(bool(self.locals["dones"][0]))
        return True

    def _on_rollout_end(self):
        buffer = self.model.rollout_buffer
        self.advantages += buffer.advantages[:, 0].tolist()
        self.values += buffer.values[:, 0].tolist()
        self.dones += self._dones
        self._dones = []


def test_value_scores_match_the_rollout_buffer_including_episodes_split_across_rollouts():
    spy = BufferSpy()
    teacher, _ = train_on_echo(1, False, steps=160, n_steps=8, extra=(spy,))  # episodes of 1-5 steps, rollouts of 8
    advantages, values, dones = np.array(spy.advantages), np.array(spy.values), np.array(spy.dones)
    ends = np.flatnonzero(dones)
    starts = np.concatenate([[0], ends[:-1] + 1])
    split = 0
    assert len(teacher.updates) == len(ends)
    for (start, end), (_, feedback) in zip(zip(starts, ends, strict=True), teacher.updates, strict=True):
        adv = advantages[start : end + 1]
        split += start // 8 != end // 8
        assert feedback.scores["positive_value_loss"] == pytest.approx(np.maximum(adv, 0).mean(), rel=1e-5, abs=1e-7)
        assert feedback.scores["value_l1"] == pytest.approx(np.abs(adv).mean(), rel=1e-5, abs=1e-7)
        assert feedback.scores["initial_value"] == pytest.approx(values[start], rel=1e-5, abs=1e-7)
    assert split >= 5  # the merge across rollouts was exercised


def test_evaluation_counts_mastered_tasks():
    tasks = TaskEchoEnv().test_set()
    result = evaluate(lambda obs: np.zeros(1), ECHO, tasks)
    expected = [TaskEchoEnv.encoded_return(t) for t in tasks]
    assert [r.episode_return for r in result.results] == pytest.approx(expected)
    assert result.mastered_pct == pytest.approx(50.0)  # returns 1.1, 9.2, 3.9, 6.5: two above 5
    assert result.mean_return == pytest.approx(np.mean(expected))


def small_config(**kwargs) -> RunConfig:
    base = {
        "env": ECHO,
        "teacher": "alp-gmm",
        "student": "ppo",
        "steps": 600,
        "n_envs": 2,
        "eval_every": 300,
        "checkpoint_every": 300,
        "teacher_params": {"fit_rate": 20},
        "device": "cpu",
        "hp_overrides": {"n_steps": "64", "batch_size": "32", "n_epochs": "1"},
    }
    return RunConfig(**{**base, **kwargs})


def test_device_cuda_without_cuda_is_refused_at_start():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RunError, match="CUDA is not available"):
        small_config(device="cuda").resolve()


def test_run_folder_determinism_and_resume(tmp_path):
    a = train(small_config(), tmp_path / "a")
    b = train(small_config(), tmp_path / "b")
    assert a == b  # same seed, same metrics
    for name in ("config.yaml", "eval.csv", "metrics.json", "model.zip", "teacher.pkl", "checkpoint/model.zip"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["teacher_updates"] == a["teacher_updates"]
    rows = (tmp_path / "a" / "eval.csv").read_text().splitlines()
    # evaluations at 300 and 600, and the final model's at 640 (PPO ends its last 128-step rollout there)
    assert rows[0] == "timesteps,task_index,task,return,success,trained_steps" and len(rows) == 1 + 3 * 4
    assert [int(r.split(",")[0]) for r in rows[1::4]] == [300, 600, a["timesteps"]] and a["timesteps"] == 640
    # continue the finished run to a larger budget: the teacher state and earlier evaluations carry over
    resumed = train(small_config(steps=1200), tmp_path / "a", resume=True)
    assert resumed["timesteps"] >= 1200
    assert resumed["teacher_updates"] > a["teacher_updates"]
    assert (tmp_path / "a" / "eval.csv").read_text().splitlines()[: len(rows)] == rows
    with pytest.raises(RunError, match="settings differ from the saved run in n_envs"):
        train(small_config(n_envs=3, steps=1500), tmp_path / "a", resume=True)
    with pytest.raises(RunError, match="already holds a run"):
        train(small_config(), tmp_path / "a")
    with pytest.raises(RunError, match="holds no run to resume"):
        train(small_config(), tmp_path / "empty", resume=True)
    assert not (tmp_path / "empty").exists()


def test_resume_after_a_crash_restores_the_checkpointed_teacher(tmp_path):
    train(small_config(steps=600), tmp_path / "run")
    checkpoint = tmp_path / "run" / "checkpoint"
    for name in ("model.zip", "metrics.json", "teacher.pkl"):  # as if killed before the end
        (tmp_path / "run" / name).unlink()
    saved_updates = yaml.safe_load((checkpoint / "progress.json").read_text())["episodes"]
    metrics = train(small_config(steps=900), tmp_path / "run", resume=True)
    assert metrics["teacher_updates"] == metrics["episodes_reported"] > saved_updates  # the count carries over


@pytest.mark.parametrize("student", ["ppo", "a2c", "sac", "td3"])
def test_two_thousand_step_run_per_student(tmp_path, student):
    hp = {"learning_starts": "200"} if student in ("sac", "td3") else {}
    config = RunConfig(
        env="point-mass",
        teacher="riac",
        student=student,
        steps=2000,
        n_envs=2,
        eval_every=2000,
        checkpoint_every=2000,
        device="cpu",
        hp_overrides=hp,
    )
    metrics = train(config, tmp_path / student)
    assert metrics["timesteps"] >= 2000
    assert metrics["episodes_reported"] >= 19 and metrics["teacher_updates"] == metrics["episodes_reported"]
    assert metrics["final_eval"]["tasks"] == 51 and 0.0 < metrics["final_eval"]["mean_return"] < 100.0


def test_run_and_eval_cli(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    args = [
        "run",
        "--env",
        ECHO,
        "--teacher",
        "random",
        "--steps",
        "300",
        "--n-envs",
        "2",
        "--eval-every",
        "300",
        "--hp",
        "n_steps=64",
        "--hp",
        "batch_size=32",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "test set:" in result.output and (out / "metrics.json").exists()
    result = runner.invoke(cli, ["eval", str(out)])
    assert result.exit_code == 0 and "of 4 test episodes mastered" in result.output
    cases = [
        (["run", "--env", "nope", "--teacher", "random"], "unknown environment 'nope'"),
        (["run", "--env", "point-mass", "--teacher", "nope"], "unknown teacher 'nope'"),
        (["run", "--env", "point-mass", "--teacher", "random", "--student", "dqn"], "unknown student 'dqn'; valid: ppo"),
        (
            ["run", "--env", "point-mass", "--teacher", "random", "--hp", "learning_rat=1"],
            "takes no hyperparameter 'learning_rat'",
        ),
        (["run", "--env", "simulated-student", "--teacher", "random"], "cannot train an RL student"),
        (["run", "--env", "point-mass", "--teacher", "random", "--test-set", "hard"], "unknown test set 'hard'"),
        (["run", "--env", "point-mass", "--teacher", "riac", "--teacher-param", "riac.size=3"], "has no parameter 'size'"),
        ([*args[:-2], "--out", str(out)], "already holds a run"),
        ([*args[:-2], "--out", str(out), "--resume", "--n-envs", "3"], "settings differ from the saved run in n_envs"),
        (["run", "--env", "point-mass", "--teacher", "random", "--resume", "--out", str(tmp_path / "x")], "holds no run"),
        (["eval", str(tmp_path / "x")], "holds no run"),
    ]
    for case, message in cases:
        result = runner.invoke(cli, case)
        assert result.exit_code == 2, (case, result.output)
        assert message in result.output, (case, result.output)
    assert not (tmp_path / "x").exists()


def test_tensorboard_shows_eval_curriculum_scalars_histograms_and_task_image(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    env = make_vec_env(ECHO, 2, seed=0)
    from curriculum.registry import make_teacher

    teacher = make_teacher("riac", TaskEchoEnv.task_space, seed=0, return_bounds=TaskEchoEnv.return_bounds)
    callback = CurriculumCallback(teacher, image_every=50)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu", tensorboard_log=str(tmp_path))
    callback.prime(env)
    model.learn(512, callback=callback, tb_log_name="tb")
    events = EventAccumulator(str(next(tmp_path.glob("tb_*"))), size_guidance={"images": 0, "histograms": 0}).Reload()
    tags = events.Tags()
    for scalar in ("curriculum/return_mean", "curriculum/success_rate", "curriculum/teacher/n_regions", "rollout/ep_rew_mean"):
        assert scalar in tags["scalars"], tags["scalars"]
    assert {"curriculum/task/a", "curriculum/task/b"} <= set(tags["histograms"])
    assert "curriculum/tasks" in tags["images"]
    returns = [e.value for e in events.Scalars("curriculum/return_mean")]
    assert all(0.0 <= r <= 11.0 for r in returns)


def test_resume_after_a_kill_during_a_checkpoint_swap(tmp_path):
    train(small_config(steps=600), tmp_path / "run")
    (tmp_path / "run" / "checkpoint").rename(tmp_path / "run" / "checkpoint.old")  # killed between the two renames
    metrics = train(small_config(steps=900), tmp_path / "run", resume=True)
    assert metrics["timesteps"] >= 900
    assert not (tmp_path / "run" / "checkpoint.old").exists()


def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(tmp_path):
    import pickle
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[1]

    def run_args(steps: int) -> list[str]:
        settings = "--env point-mass --teacher alp-gmm --n-envs 2 --device cpu --eval-every 1000000 --checkpoint-every 1000000"
        return ["run", *settings.split(), "--steps", str(steps), "--out", str(out)]

    command = [sys.executable, str(root / "cli.py"), *run_args(10_000_000)]
    log = (tmp_path / "log.txt").open("w")  # a file, not a pipe: a full pipe would block the run's progress output
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=root, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint" / "progress.json").exists():  # the first checkpoint: a rollout is done
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:  # never leave a 10M-step run behind
            process.kill()
        log.close()
    output = (tmp_path / "log.txt").read_text()
    assert process.returncode == 130, output
    assert "interrupted: checkpoint saved" in output and "Traceback" not in output
    progress = json.loads((out / "checkpoint" / "progress.json").read_text())
    assert progress["timesteps"] > 0 and progress["episodes"] > 0
    teacher_state = pickle.loads((out / "checkpoint" / "teacher.pkl").read_bytes())
    assert teacher_state["n_updates"] == progress["episodes"]
    resumed = CliRunner().invoke(cli, [*run_args(progress["timesteps"] + 512), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["timesteps"] >= progress["timesteps"] + 512 and metrics["teacher_updates"] > progress["episodes"]


def test_a_student_the_loop_does_not_know_is_refused_not_left_without_scores():
    from stable_baselines3 import DQN

    from curriculum.registry import make_teacher
    from students.loop.algorithms import StudentConfigError
    from tests.user_env import CorridorEnv

    env = make_vec_env("tests.user_env:CorridorEnv", 2, seed=0)
    callback = CurriculumCallback(make_teacher("random", CorridorEnv.task_space, seed=0))
    model = DQN("MlpPolicy", env, device="cpu", learning_starts=10)
    callback.prime(env)
    with pytest.raises(
        StudentConfigError, match="does not know a DQN student: declare it in students.loop.algorithms.STUDENTS"
    ):
        model.learn(100, callback=callback)
    env.close()


def test_each_declared_student_says_what_sb3_says_it_is():
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    from students.loop.algorithms import ON_POLICY, STUDENTS

    for name, entry in STUDENTS.items():
        assert entry.on_policy == issubclass(entry.cls, OnPolicyAlgorithm), name
        assert entry.on_policy != issubclass(entry.cls, OffPolicyAlgorithm), name
        assert entry.scores, name  # every student of ours gives the value scores
    assert ON_POLICY == ("ppo", "a2c", "trpo", "recurrent-ppo")
