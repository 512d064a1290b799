"""Runs a researcher can trust: final metrics of the final model, exact resume, independent seeds, every student
with every observation, locks and restarts."""

import json
import os
from collections import deque
import pickle
import signal

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList

from cli import cli
from curriculum.registry import make_teacher
from curriculum.seeding import Streams
from environments.point_mass import PointMassGateEnv
from environments.simulated_student import SimulatedStudent
from students.loop.curriculum import CurriculumCallback
from students.loop.evaluation import EvalCallback, evaluate
from students.run.lock import FolderInUseError, FolderLock
from students.loop.masked import MaskedPPO
from students.run.train import RunConfig, RunError, train
from students.loop.vec_env import make_vec_env
from tests.user_env import TaskEchoEnv

ECHO = "tests.user_env:TaskEchoEnv"
OFF_POLICY_HP = {"learning_starts": "64", "batch_size": "32", "buffer_size": "2000", "train_freq": "8", "gradient_steps": "2"}


def point_mass(student: str, teacher: str, steps: int, **kwargs) -> RunConfig:
    hp = {"n_steps": "128", "batch_size": "64", "n_epochs": "2"} if student in ("ppo", "a2c") else dict(OFF_POLICY_HP)
    if student == "a2c":
        hp = {"n_steps": "16"}
    if student == "trpo":
        hp = {"n_steps": "128", "batch_size": "128"}
    base = {
        "env": "point-mass",
        "teacher": teacher,
        "student": student,
        "steps": steps,
        "n_envs": 2,
        "eval_every": 512,
        "checkpoint_every": 100_000,
        "test_set": "narrow",
        "device": "cpu",
        "hp_overrides": hp,
    }
    return RunConfig(**{**base, **kwargs})


def interrupt_at(timesteps: int):
    """A progress callback that presses Ctrl-C (SIGINT to this process) once the run passes ``timesteps``."""
    sent = [False]

    def progress(steps: int, _episodes: int, _mastered) -> None:
        if steps >= timesteps and not sent[0]:
            sent[0] = True
            os.kill(os.getpid(), signal.SIGINT)

    return progress


def same(a, b) -> bool:
    """Deep equality of nested containers holding numpy arrays."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple | deque):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, np.random.Generator):  # a level's own generator: the same draws to come
        return isinstance(b, np.random.Generator) and same(a.bit_generator.state, b.bit_generator.state)
    if hasattr(a, "__dict__"):  # dataclasses and small objects (a fitted GMM, a level buffer)
        return type(a) is type(b) and same(vars(a), vars(b))
    return a == b


# -- 1. the final result is an evaluation of the final model -------------------------------------------------
def test_final_metrics_are_an_evaluation_of_the_final_model(tmp_path):
    config = point_mass("ppo", "random", 1100, eval_every=512)  # last periodic evaluation at 1024, end at 1280
    metrics = train(config, tmp_path / "run")
    rows = (tmp_path / "run" / "eval.csv").read_text().splitlines()[1:]
    assert sorted({int(r.split(",")[0]) for r in rows}) == [512, 1024, 1280] == [512, 1024, metrics["timesteps"]]
    model = PPO.load(tmp_path / "run" / "model.zip", device="cpu")
    tasks = PointMassGateEnv().test_set("narrow")
    again = evaluate(lambda obs: model.predict(obs, deterministic=True)[0], "point-mass", tasks, Streams(0).evaluation)
    assert metrics["final_eval"]["mastered_pct"] == again.mastered_pct
    assert metrics["final_eval"]["mean_return"] == pytest.approx(again.mean_return, abs=1e-12)
    shown = CliRunner().invoke(cli, ["eval", str(tmp_path / "run")])
    assert shown.exit_code == 0 and f"mean return {again.mean_return:.2f}" in shown.output


# -- 2 and 3. resume continues the schedule and the run exactly -----------------------------------------------
@pytest.mark.parametrize(
    ("student", "teacher", "params"),
    [
        ("ppo", "alp-gmm", {"fit_rate": 20}),
        ("ppo", "accel", {"buffer_size": 6, "min_fill": 0.5, "cycle": "episode"}),
        ("ppo", "accel", {"buffer_size": 6, "min_fill": 0.5}),  # dcd's cycle (the default)
        ("a2c", "robust-plr", {"buffer_size": 6, "min_fill": 0.5}),  # a cycle of several 16-step rollouts
        ("sac", "plr", {"buffer_size": 6, "cycle": "episode"}),
    ],
)
def test_a_resumed_run_ends_exactly_as_the_uninterrupted_one(tmp_path, student, teacher, params):
    config = point_mass(student, teacher, 2600, teacher_params=params, eval_every=600)
    whole = train(config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(1000))
    stopped = json.loads((tmp_path / "cut" / "checkpoint" / "progress.json").read_text())
    assert 1000 <= stopped["timesteps"] < 2600 and stopped["exact"]
    resumed = train(config, tmp_path / "cut", resume=True)
    assert resumed == whole  # episodes, teacher updates and statistics, final evaluation
    for name in ("metrics.json", "eval.csv"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    teachers = [pickle.loads((tmp_path / run / "teacher.pkl").read_bytes()) for run in ("whole", "cut")]
    assert same(*teachers)
    steps = sorted({int(r.split(",")[0]) for r in (tmp_path / "cut" / "eval.csv").read_text().splitlines()[1:]})
    assert steps[:4] == [600, 1200, 1800, 2400]  # each evaluation once, on the step counter's schedule


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    config = point_mass("ppo", "random", 600)
    metrics = train(config, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    messages = []
    assert train(config, tmp_path / "run", resume=True, notify=messages.append) == metrics
    assert messages and "already finished" in messages[0]
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before
    assert metrics["episodes_reported"] == metrics["teacher_updates"] > 0


def test_periodic_callbacks_follow_the_step_counter_across_learn_calls(tmp_path):
    env = make_vec_env(ECHO, 2, seed=0)
    teacher = make_teacher("random", TaskEchoEnv.task_space, seed=0)
    curriculum = CurriculumCallback(teacher)
    evaluator = EvalCallback(ECHO, TaskEchoEnv().test_set(), 512, tmp_path / "eval.csv")
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, device="cpu")
    curriculum.prime(env)
    model.learn(1024, callback=CallbackList([curriculum, evaluator]))
    model.learn(1024, callback=CallbackList([curriculum, evaluator]), reset_num_timesteps=False)
    steps = [int(r.split(",")[0]) for r in (tmp_path / "eval.csv").read_text().splitlines()[1::4]]
    assert steps == [512, 1024, 1536, 2048]


# -- 4. a run that died before its first checkpoint restarts ---------------------------------------------------
def test_the_first_checkpoint_comes_after_the_first_rollout_and_a_run_without_one_restarts(tmp_path):
    config = point_mass("ppo", "random", 1024, checkpoint_every=100_000)

    def crash(steps, _episodes, _mastered):
        if steps >= 400:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, tmp_path / "run", progress=crash)
    progress = json.loads((tmp_path / "run" / "checkpoint" / "progress.json").read_text())
    assert progress["timesteps"] == 256  # one rollout of 128 steps x 2 envs

    def crash_at_start(steps, _episodes, _mastered):
        raise RuntimeError("dies before any checkpoint")

    with pytest.raises(RuntimeError):
        train(config, tmp_path / "early", progress=crash_at_start)
    assert (tmp_path / "early" / "config.yaml").exists() and not (tmp_path / "early" / "checkpoint").exists()
    messages = []
    restarted = train(config, tmp_path / "early", resume=True, notify=messages.append)
    assert "restarting it from step 0" in messages[0]
    assert restarted == train(config, tmp_path / "fresh")


# -- 5. independent random streams -----------------------------------------------------------------------------
def test_every_stream_is_spawned_independently_from_the_seed():
    seeds = {s.teacher for s in map(Streams, range(5))} | {s.student for s in map(Streams, range(5))}
    seeds |= {Streams(s).env(i) for s in range(5) for i in range(4)} | {s.evaluation for s in map(Streams, range(5))}
    assert len(seeds) == 5 * 3 + 5 * 4  # all distinct

    def first_level_seeds(seed: int) -> list[int]:
        env = make_vec_env(ECHO, 2, seed=seed)
        seeds = [e.unwrapped.level_seed for e in env.envs]
        env.close()
        return seeds

    zero, one = first_level_seeds(0), first_level_seeds(1)
    assert zero[1] != one[0]  # sub-env 1 of seed 0 and sub-env 0 of seed 1 no longer share a stream
    teacher = make_teacher("random", TaskEchoEnv.task_space, seed=Streams(0).teacher)  # as train() builds it
    assert int(teacher.rng.integers(2**31 - 1)) not in zero  # the teacher's first draw is not sub-env 0's level seed


def test_simulated_student_state_round_trip():
    student = SimulatedStudent(return_noise=0.1, seed=3)
    tasks = np.random.default_rng(0).random((400, 2))
    for task in tasks[:200]:
        student.episode(task)
    state = student.get_state()
    rest = [student.episode(task) for task in tasks[200:]]
    other = SimulatedStudent(return_noise=0.1, seed=99)
    other.set_state(state)
    assert [other.episode(task) for task in tasks[200:]] == rest
    with pytest.raises(ValueError, match="cells"):
        SimulatedStudent(cells=4).set_state(state)


def test_point_mass_state_round_trip_continues_exactly():
    env = PointMassGateEnv()
    env.set_task([1.0, 2.0, 0.5], level_seed=7)
    env.reset(seed=11)
    actions = np.random.default_rng(1).uniform(-10, 10, (60, 2))
    for action in actions[:30]:
        env.step(action)
    env.set_task([-2.0, 4.0, 1.0])
    state = env.get_state()
    rest = [env.step(a)[:4] for a in actions[30:]] + [env.reset()[0]]
    other = PointMassGateEnv()
    other.reset(seed=123)
    other.set_state(state)
    again = [other.step(a)[:4] for a in actions[30:]] + [other.reset()[0]]
    assert same(rest, again) and other.level_seed == env.level_seed


# -- 6. every student with every observation mode and teacher family -----------------------------------------
STUDENTS = ["ppo", "a2c", "trpo", "sac", "td3", "tqc"]


@pytest.mark.parametrize("mode", ["plain", "privileged"])
@pytest.mark.parametrize("teacher", ["random", "plr", "robust-plr"])
@pytest.mark.parametrize("student", STUDENTS)
def test_every_student_trains_with_every_observation_mode_and_teacher_family(tmp_path, student, teacher, mode):
    params = {"buffer_size": 4, "min_fill": 0.5} if teacher != "random" else {}
    if teacher != "random" and student not in ("ppo", "a2c", "trpo"):
        params["cycle"] = "episode"  # dcd's cycle (the default) is for on-policy students
    config = point_mass(student, teacher, 400, teacher_params=params, env_kwargs={"observation_mode": mode, "horizon": 20})
    config.eval_every = 100_000
    metrics = train(config, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["hyperparams"]["policy"] == ("MultiInputPolicy" if mode == "privileged" else "MlpPolicy")
    ended = metrics["episodes_reported"] + metrics.get("episodes_cut", 0)  # dcd's cycle cuts some at a rollout's start
    assert ended >= metrics["timesteps"] // 20 - 2  # horizon 20: every sub-env keeps finishing
    assert metrics["teacher_updates"] == metrics["episodes_reported"] + metrics.get("episodes_cut", 0)
    assert metrics["final_eval"]["tasks"] == 24


def test_env_kwarg_reaches_the_environment_and_bad_ones_are_refused(tmp_path):
    base = ["run", "--env", "point-mass", "--teacher", "random", "--steps", "256", "--n-envs", "2", "--device", "cpu"]
    base += ["--hp", "n_steps=64", "--hp", "batch_size=64", "--test-set", "narrow"]
    ok = CliRunner().invoke(cli, [*base, "--env-kwarg", "observation_mode=privileged", "--out", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.output
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["env_kwargs"] == {"observation_mode": "privileged"}
    bad = CliRunner().invoke(cli, [*base, "--env-kwarg", "wings=3", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "wings" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "b").exists()


# -- 7. chunked learn() calls -----------------------------------------------------------------------------------
@pytest.mark.parametrize("reset", [True, False])
def test_a_second_learn_call_keeps_the_loop_in_step(reset):
    env = make_vec_env("point-mass", 2, seed=0, env_kwargs={"horizon": 20})
    teacher = make_teacher("robust-plr", PointMassGateEnv.task_space, seed=0, buffer_size=6, min_fill=0.5, cycle="episode")
    callback = CurriculumCallback(teacher)
    model = MaskedPPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, device="cpu")
    callback.prime(env)
    model.learn(256, callback=callback)
    first = teacher.n_updates
    model.learn(256, callback=callback, reset_num_timesteps=reset)  # raised "played level seed ..." before
    assert teacher.n_updates > first and callback.stats.episodes == teacher.n_updates
    env.close()


# -- 8. folders in use -------------------------------------------------------------------------------------------
def test_a_folder_in_use_is_refused_with_its_holder(tmp_path):
    with FolderLock(tmp_path / "run"):
        with pytest.raises(FolderInUseError, match=f"in use by another teachrl process \\(pid {os.getpid()}\\)"):
            with FolderLock(tmp_path / "run"):
                pass
    with FolderLock(tmp_path / "run"):  # released
        pass


def test_resume_needs_a_run_and_refuses_old_checkpoints(tmp_path):
    config = point_mass("ppo", "random", 300)
    with pytest.raises(RunError, match="holds no run to resume"):
        train(config, tmp_path / "none", resume=True)
    assert not (tmp_path / "none").exists()


# -- an environment that cannot capture its state restarts the level it was playing ---------------------------
def test_an_env_without_state_restarts_its_level_on_resume(tmp_path):
    from environments.walkers.stump_tracks import StumpTracksEnv

    assert not StumpTracksEnv().supports_state and PointMassGateEnv().supports_state
    env = make_vec_env(ECHO, 2, seed=0)  # TaskEchoEnv declares no state_attrs
    for env_index, task in enumerate(([0.9, 0.1], [0.8, 0.2])):
        env.env_method("set_task", np.array(task), 5 + env_index, indices=[env_index])
    env.reset()
    env.step(np.zeros((2, 1)))
    env.env_method("set_task", np.array([0.3, 0.3]), 9, indices=[0])
    saved = env.env_method("snapshot")
    assert saved[0]["env"] is None and saved[0]["playing"][1] == 5 and saved[0]["pending"][1] == 9
    fresh = make_vec_env(ECHO, 2, seed=0)
    first = fresh.env_method("restore", saved[0], 123, indices=[0])[0]
    base = fresh.envs[0].unwrapped
    assert np.allclose(first, [0.0, 0.9, 0.1]) and base.level_seed == 5  # the same level, from its start
    assert base.has_pending_task() and base._pending_seed == 9  # and its pending level queued again


def test_a_run_on_such_an_env_resumes_and_accounts_for_every_episode(tmp_path):
    config = RunConfig(
        env=ECHO,
        teacher="plr",
        student="ppo",
        steps=2400,
        n_envs=2,
        eval_every=600,
        device="cpu",
        teacher_params={"buffer_size": 8},
        hp_overrides={"n_steps": "64", "batch_size": "64", "n_epochs": "1"},
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", progress=interrupt_at(1000))
    metrics = train(config, tmp_path / "run", resume=True)
    assert metrics["teacher_updates"] == metrics["episodes_reported"] + metrics["episodes_cut"]
    assert metrics["episodes_reported"] > 300
    steps = [int(r.split(",")[0]) for r in (tmp_path / "run" / "eval.csv").read_text().splitlines()[1::4]]
    assert steps == [600, 1200, 1800, 2400, metrics["timesteps"]]  # each once; the last is the final model's


def test_a_checkpoint_pickled_before_the_rooms_resumes_exactly(tmp_path):
    """A checkpoint written before ``students/`` was split into rooms names its classes under the old modules
    (``students.curriculum``, ``students.masked``, ...); it resumes, and exactly."""
    from students.run.checkpoints import MOVED_MODULES

    config = point_mass("sac", "plr", 2600, teacher_params={"buffer_size": 6, "cycle": "episode"}, eval_every=600)
    whole = train(config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(1000))
    renamed = 0
    for name in ("state.pkl", "replay_buffer.pkl"):  # protocol 2 names each class as "module\nname\n"
        path = tmp_path / "cut" / "checkpoint" / name
        raw = pickle.dumps(pickle.loads(path.read_bytes()), protocol=2)
        for old, new in MOVED_MODULES.items():
            renamed += raw.count(f"{new}\n".encode())
            raw = raw.replace(f"{new}\n".encode(), f"{old}\n".encode())
        path.write_bytes(raw)
    assert renamed >= 3  # the curriculum state, the evaluator and the replay buffer's class at least
    with pytest.raises(ModuleNotFoundError):
        pickle.loads((tmp_path / "cut" / "checkpoint" / "state.pkl").read_bytes())
    assert train(config, tmp_path / "cut", resume=True) == whole
