"""The public Python surface: a teacher in one's own SB3 script, a whole run from Python, and the wrong
combinations each refused at construction with one line."""

import io

import pandas as pd
import pytest
from stable_baselines3 import DQN, PPO, SAC

import curriculum
import environments
import students


def point_mass_env(n_envs=2):
    return students.make_vec_env("point-mass", n_envs=n_envs, seed=0)


def test_the_public_names_are_importable_from_the_packages_top():
    for package in (curriculum, environments, students):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
    assert "paired" in curriculum.teacher_names() and "alp-gmm" in curriculum.teacher_names()


def test_a_teacher_in_ones_own_ppo_script_plays_every_episode_it_chose():
    teacher = curriculum.teacher_for("alp-gmm", environments.make_env("point-mass"), seed=0)
    env = point_mass_env()
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    callback = students.CurriculumCallback(teacher, env=env, student=model)
    model.learn(256, callback=callback)
    assert callback.episodes_finished > 0
    assert teacher.n_updates == callback.episodes_finished


def test_an_unprepared_teacher_is_refused_when_the_callback_is_built():
    env = environments.make_env("point-mass")
    teacher = curriculum.make_teacher("adr", env.task_space, seed=0, return_bounds=env.return_bounds)
    with pytest.raises(ValueError, match=r"reads its environment .* curriculum\.teacher_for\(name, env\)"):
        students.CurriculumCallback(teacher, env=point_mass_env())


@pytest.mark.parametrize(
    ("teacher", "student", "message"),
    [
        ("robust-plr", "ppo", r"trains the student only on some episodes, which a PPO student cannot .*masked\.MaskedPPO"),
        ("plr", "sac", r"runs dcd's cycle .* needs an on-policy student .* cycle=episode"),
        ("paired", "ppo", r"measures regret against a second student .* students\.train"),
    ],
)
def test_a_student_that_cannot_serve_the_teacher_is_refused_when_the_callback_is_built(teacher, student, message):
    env = point_mass_env()
    made = curriculum.teacher_for(teacher, environments.make_env("point-mass"), seed=0)
    model = (PPO if student == "ppo" else SAC)("MlpPolicy", env, seed=0, device="cpu", **(
        {"n_steps": 64, "batch_size": 64} if student == "ppo" else {"buffer_size": 1000}))
    with pytest.raises(ValueError, match=message) as info:
        students.CurriculumCallback(made, env=env, student=model)
    assert "\n" not in str(info.value)


def test_a_student_the_loop_cannot_score_is_refused_when_the_callback_is_built():
    env = students.make_vec_env("cartpole", n_envs=1, seed=0)
    teacher = curriculum.teacher_for("plr", environments.make_env("cartpole"), seed=0, cycle="episode")
    model = DQN("MlpPolicy", env, buffer_size=1000, seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"does not know a DQN student: declare it in students\.loop\.algorithms"):
        students.CurriculumCallback(teacher, env=env, student=model)


def test_train_from_python_returns_the_metrics_and_the_evaluations_as_objects(tmp_path):
    config = students.RunConfig(env="point-mass", teacher="random", steps=2048, eval_every=1024, device="cpu",
                                n_envs=4, hp_overrides={"n_steps": "256", "batch_size": "256"})
    lines = io.StringIO()
    display = students.ProgressDisplay("random -> ppo", config.steps, stream=lines)
    assert not display.live  # not a terminal: plain lines
    result = students.train(config, tmp_path / "run", progress=display, notify=None)
    assert result.mastered_pct == result.metrics["final_eval"]["mastered_pct"]
    table = result.evaluations()
    assert isinstance(table, pd.DataFrame) and len(table) > 0
    assert students.RunResult.load(tmp_path / "run").metrics == result.metrics
    assert isinstance(result.load_model(), PPO)
    printed = lines.getvalue().splitlines()
    assert printed and printed[-1].startswith("random -> ppo: 2048/2048 steps")
    with pytest.raises(FileNotFoundError, match="has no metrics.json"):
        students.RunResult.load(tmp_path / "nothing")


def test_a_run_logs_to_weights_and_biases_offline_beside_tensorboard(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = students.RunConfig(env="point-mass", teacher="alp-gmm", steps=2048, eval_every=1024, device="cpu",
                                n_envs=4, hp_overrides={"n_steps": "256", "batch_size": "256"}, wandb="teachrl-tests")
    result = students.train(config, tmp_path / "run", progress=False, notify=None)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), runs  # the W&B run's log, written offline
    assert result.metrics["final_eval"]["mastered_pct"] >= 0
    import yaml

    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["wandb"] == "teachrl-tests"


def test_wandb_without_the_package_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    config = students.RunConfig(env="point-mass", teacher="random", steps=256, device="cpu", wandb="p")
    with pytest.raises(students.RunError, match=r"^--wandb needs the wandb package: pip install 'teachrl\[wandb\]'"):
        students.train(config, tmp_path / "run", progress=False, notify=None)
    assert not (tmp_path / "run").exists()
