"""The student with memory (sb3-contrib's RecurrentPPO with dcd's maze encoder): it runs in the curriculum loop, its
hidden states survive a resume exactly, it plays evaluations with its memory, and what it cannot do is refused."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from environments.registry import make_env
from students.loop.algorithms import StudentConfigError, model_arguments
from students.loop.features import MazeViewCNN
from students.policies import Actor
from students.run.train import RunConfig, RunError, train
from tests.test_runs import interrupt_at

SMALL = (
    "{features_extractor_class: maze-view-cnn, lstm_hidden_size: 16, shared_lstm: true, enable_critic_lstm: false, "
    "net_arch: {pi: [8], vf: [8]}}"
)


def maze_run(teacher: str, steps: int, **params) -> RunConfig:
    return RunConfig(
        env="maze",
        teacher=teacher,
        student="recurrent-ppo",
        steps=steps,
        n_envs=2,
        eval_every=512,
        checkpoint_every=100_000,
        test_set="no-lava",
        device="cpu",
        teacher_params=params,
        hp_overrides={"n_steps": "32", "batch_size": "64", "n_epochs": "2", "policy_kwargs": SMALL},
    )


def test_dcds_encoder_reads_the_maze_view_and_refuses_another_shape():
    env = make_env("maze")
    encoder = MazeViewCNN(env.observation_space)
    assert encoder.features_dim == 3 * 3 * 16 + 5  # dcd's 144 image features and 5 of the heading
    obs = th.as_tensor(np.stack([env.reset(seed=s)[0] for s in range(3)]))
    assert encoder(obs).shape == (3, 149)
    with pytest.raises(ValueError, match="reads a flat maze view of 5 x 5 cells x 11 channels"):
        MazeViewCNN(gym.spaces.Box(0, 1, (10,)))
    with pytest.raises(StudentConfigError, match="unknown features_extractor_class 'cnn'; valid: maze-view-cnn"):
        model_arguments({"policy_kwargs": {"features_extractor_class": "cnn"}})


def test_a_recurrent_run_with_accel_resumes_exactly(tmp_path):
    config = maze_run("accel", 2048, buffer_size=8, min_fill=0.25)
    whole = train(config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(1000))
    stopped = json.loads((tmp_path / "cut" / "checkpoint" / "progress.json").read_text())
    assert 1000 <= stopped["timesteps"] < 2048 and stopped["exact"]
    resumed = train(config, tmp_path / "cut", resume=True)
    assert resumed == whole
    for name in ("metrics.json", "eval.csv"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert whole["teacher_stats"]["student_updates"] >= 1


def test_robust_plr_per_episode_is_refused_for_a_student_that_learns_sequences(tmp_path):
    with pytest.raises(RunError, match="student 'recurrent-ppo' learns from whole sequences .* give it cycle=rollout"):
        train(maze_run("robust-plr", 128, cycle="episode"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_evaluation_plays_with_memory_and_forgets_it_between_episodes():
    from sb3_contrib import RecurrentPPO

    env = make_env("maze")
    model = RecurrentPPO("MlpLstmPolicy", env, n_steps=16, batch_size=16, device="cpu", **{
        k: v for k, v in model_arguments({"policy_kwargs": {"lstm_hidden_size": 8}}).items()
    })
    actor = Actor(model)
    assert actor.recurrent and actor.state is None
    obs, _ = env.reset(seed=0)
    actor(obs)
    first = [s.copy() for s in actor.state]
    actor(obs)
    assert not np.array_equal(first[0], actor.state[0])  # the same view, another memory
    actor.reset()
    actor(obs)
    assert np.array_equal(first[0], actor.state[0])  # a new episode starts from a cleared memory
    plain = Actor(type("M", (), {"predict": lambda self, o, deterministic: (np.int64(2), None)})())
    assert not plain.recurrent and plain(obs) == 2
