"""The student side of the regret-based teachers: regret scores, masked updates, start-up checks."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch as th
from click.testing import CliRunner
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from cli import cli
from curriculum.base import Level
from curriculum.random_teacher import RandomTeacher
from students.loop import masked
from students.loop.curriculum import CurriculumCallback
from students.loop.masked import MaskedPPO, MaskedSAC
from students.run.train import RunConfig, RunError, student_class_for, train
from students.loop.vec_env import make_vec_env
from tests.test_students import ECHO, RecordingTeacher
from tests.user_env import TaskEchoEnv

GAMMA, LAMBDA, VALUE = 0.9, 0.95, 0.7


def hand_scores(task, start=0, rollout=None, value=VALUE, gamma=GAMMA, lam=LAMBDA):
    """Scores of one TaskEchoEnv episode with V(s) = ``value`` everywhere, written out step by step.

    With ``rollout`` (PPO's n_steps; the episode starts at global step ``start``), each step's GAE sum stops at the
    end of its rollout, as PPO computes it (the boundary bootstraps with V).
    """
    length = 1 + int(4 * task[0])
    rewards = [0.0] * (length - 1) + [TaskEchoEnv.encoded_return(task)]
    deltas = [rewards[t] + (gamma * value if t < length - 1 else 0.0) - value for t in range(length)]  # terminates

    def last(t):
        return length - 1 if rollout is None else min(length - 1, ((start + t) // rollout + 1) * rollout - 1 - start)

    advantages = [sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, last(t) + 1)) for t in range(length)]
    return {
        "positive_value_loss": np.mean([max(a, 0.0) for a in advantages]),
        "value_l1": np.mean([abs(a) for a in advantages]),
        "mean_value": value,
        "initial_value": value,
    }


def check_scores(updates, rollout=None, min_episodes=20):
    assert len(updates) >= min_episodes
    start = 0
    for task, feedback in updates:
        for key, expected in hand_scores(task, start, rollout).items():
            assert feedback.scores[key] == pytest.approx(expected, rel=1e-5, abs=1e-5), key
        start += feedback.length


def test_ppo_scores_with_a_fixed_value_function_equal_hand_computed_values_across_rollouts():
    env = make_vec_env(ECHO, 1, seed=0)
    teacher = RecordingTeacher(TaskEchoEnv.task_space, seed=1)
    callback = CurriculumCallback(teacher)
    # learning rate 0 keeps V fixed; rollouts of 4 steps cut episodes of up to 5 steps
    model = PPO(
        "MlpPolicy", env, n_steps=4, batch_size=4, n_epochs=1, gamma=GAMMA, gae_lambda=LAMBDA, learning_rate=0.0, seed=0
    )
    with th.no_grad():
        model.policy.value_net.weight.zero_()
        model.policy.value_net.bias.fill_(VALUE)
    callback.prime(env)
    model.learn(200, callback=callback)
    check_scores(teacher.updates, rollout=4)
    ends = np.cumsum([feedback.length for _, feedback in teacher.updates])
    starts = ends - [feedback.length for _, feedback in teacher.updates]
    assert np.sum(starts // 4 != (ends - 1) // 4) >= 5  # episodes split across rollouts were merged


def test_sac_scores_from_a_fixed_critic_equal_hand_computed_values():
    env = make_vec_env(ECHO, 2, seed=0)
    teacher = RecordingTeacher(TaskEchoEnv.task_space, seed=1)
    callback = CurriculumCallback(teacher)
    model = SAC("MlpPolicy", env, gamma=GAMMA, learning_starts=10_000, seed=0, device="cpu")
    with th.no_grad():
        for q_net in model.critic.q_networks:
            q_net[-1].weight.zero_()
            q_net[-1].bias.fill_(VALUE)
    callback.prime(env)
    model.learn(120, callback=callback)
    check_scores(teacher.updates)


def test_masked_ppo_equals_ppo_when_nothing_is_masked():
    models = []
    for cls in (PPO, MaskedPPO):
        model = cls("MlpPolicy", make_vec_env(ECHO, 2, seed=0), n_steps=16, batch_size=8, n_epochs=2, seed=3, device="cpu")
        model.learn(64)
        models.append(model.policy.state_dict())
    for key, value in models[0].items():
        th.testing.assert_close(models[1][key], value, rtol=0, atol=0)


def test_masked_ppo_update_ignores_masked_transitions():
    model = MaskedPPO("MlpPolicy", make_vec_env(ECHO, 2, seed=0), n_steps=32, batch_size=16, n_epochs=3, seed=0, device="cpu")
    _, callback = model._setup_learn(64, callback=None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=model.n_steps)
    buffer = model.rollout_buffer
    buffer.train_mask[:] = True
    buffer.train_mask[::3, 0] = False
    buffer.train_mask[5:20, 1] = False
    masked_out = ~buffer.train_mask
    start = copy.deepcopy((model.policy.state_dict(), model.policy.optimizer.state_dict(), buffer))
    rng = (np.random.get_state(), th.get_rng_state())

    def update(corrupt):
        params, optimizer, saved = copy.deepcopy(start)
        model.policy.load_state_dict(params)
        model.policy.optimizer.load_state_dict(optimizer)
        np.random.set_state(rng[0])
        th.set_rng_state(rng[1])
        if corrupt:  # any value on masked transitions: the update must not see them
            saved.advantages[masked_out] = 1e4
            saved.returns[masked_out] = -1e4
            saved.log_probs[masked_out] = 50.0
            saved.actions[masked_out] = 0.9
            saved.observations[masked_out] = 7.0
        model.rollout_buffer = saved
        model.train()
        return copy.deepcopy(model.policy.state_dict())

    clean, corrupted = update(False), update(True)
    changed = False
    for key, value in clean.items():
        th.testing.assert_close(corrupted[key], value, rtol=0, atol=0)
        changed |= not th.equal(value, start[0][key])
    assert changed  # the unmasked transitions did update the policy


class MaskSpy(BaseCallback):
    """Copies the rollout buffer's mask and observations at each rollout's end."""

    def __init__(self):
        super().__init__()
        self.masks, self.observations = [], []

    def _on_step(self):
        return True

    def _on_rollout_end(self):
        self.masks.append(self.model.rollout_buffer.train_mask.copy())
        self.observations.append(self.model.rollout_buffer.observations.copy())


class AlternatingTeacher(RandomTeacher):
    """Asks for no training on every other level; the level's b coordinate (seen in the observation) says which."""

    masks_updates = True

    def sample_level(self):
        train = bool(self.rng.random() < 0.5)
        task = np.array([self.rng.uniform(0, 1), 0.75 if train else 0.25])
        return Level(task, int(self.rng.integers(1000)), train)


@pytest.mark.parametrize("subproc", [False, True])
def test_callback_masks_exactly_the_steps_of_no_training_levels(subproc):
    env = make_vec_env(ECHO, 3, seed=0, subproc=subproc)
    callback, spy = CurriculumCallback(AlternatingTeacher(TaskEchoEnv.task_space, seed=0)), MaskSpy()
    model = MaskedPPO("MlpPolicy", env, n_steps=8, batch_size=8, n_epochs=1, seed=0, device="cpu")
    callback.prime(env)
    model.learn(96, callback=CallbackList([callback, spy]))
    env.close()
    masks, observations = np.concatenate(spy.masks), np.concatenate(spy.observations)
    np.testing.assert_array_equal(masks, observations[..., 2] > 0.5)
    assert 0.2 < masks.mean() < 0.8


def test_masked_replay_buffer_never_samples_masked_transitions():
    env = make_vec_env(ECHO, 3, seed=0)
    callback = CurriculumCallback(AlternatingTeacher(TaskEchoEnv.task_space, seed=0))
    model = MaskedSAC("MlpPolicy", env, learning_starts=10_000, seed=0, device="cpu")
    callback.prime(env)
    model.learn(150, callback=callback)
    buffer = model.replay_buffer
    filled = buffer.observations[: buffer.pos]
    np.testing.assert_array_equal(buffer.valid[: buffer.pos], filled[..., 2] > 0.5)
    batch = buffer.sample(2000)
    assert th.all(batch.observations[:, 2] > 0.5)
    assert len(set(batch.observations[:, 1].tolist())) > 5  # many levels, not one


def test_start_up_checks_name_the_missing_score_or_masking(tmp_path, monkeypatch):
    class NeedsRegret(RandomTeacher):
        required_scores = ("true_regret",)

    with pytest.raises(RunError, match="true_regret, which SB3 students do not provide"):
        student_class_for(NeedsRegret(TaskEchoEnv.task_space), "ppo")
    teacher = AlternatingTeacher(TaskEchoEnv.task_space)
    assert (
        student_class_for(teacher, "ppo") is MaskedPPO
        and student_class_for(RandomTeacher(TaskEchoEnv.task_space), "ppo") is PPO
    )
    monkeypatch.delitem(masked.MASKED_ALGORITHMS, "a2c")
    with pytest.raises(RunError, match="student 'a2c' cannot leave episodes out of its updates; valid: ppo, trpo, sac"):
        train(RunConfig(env=ECHO, teacher="robust-plr", student="a2c", steps=100), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_simulate_refuses_teachers_that_need_student_scores():
    result = CliRunner().invoke(cli, ["simulate", "--teachers", "random,plr", "--episodes", "100"])
    assert result.exit_code == 2
    assert "teacher 'plr' needs the student's positive_value_loss score" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("cycle", ["episode", "rollout"])
@pytest.mark.parametrize("teacher", ["plr", "robust-plr", "accel"])
def test_regret_teachers_run_end_to_end(tmp_path, teacher, cycle):
    params = {"buffer_size": 8, "min_fill": 0.5, "cycle": cycle}
    config = RunConfig(
        env="point-mass",
        teacher=teacher,
        student="ppo",
        steps=2048,
        n_envs=2,
        eval_every=1024,
        teacher_params=params,
        hp_overrides={"n_steps": "256", "batch_size": "64"},
        test_set="narrow",
    )
    metrics = train(config, tmp_path / "run")
    stats = metrics["teacher_stats"]
    assert metrics["timesteps"] >= 2048 and metrics["episodes_reported"] >= 15
    if cycle == "episode":
        assert metrics["teacher_updates"] == metrics["episodes_reported"] and "episodes_cut" not in metrics
        assert stats["buffer_size"] == 8 and stats["replay_share"] > 0.2
        if teacher == "accel":
            assert stats["child_share"] > 0.05  # children are played (2 of the ~24 episodes at this tiny budget)
        return
    assert metrics["teacher_updates"] == metrics["episodes_reported"] + metrics["episodes_cut"]
    rollouts = [stats[f"{kind}_rollouts"] for kind in ("replay", "new", "edit")]
    assert sum(rollouts) == 2048 // (2 * 256) and rollouts[1] >= 1  # 4 rollouts of 2 x 256 steps, new levels first
    trained = rollouts[0] + (0 if teacher != "plr" else rollouts[1])
    assert stats["student_updates"] == trained and stats["buffer_size"] >= 4


class RecordingLogger:
    def __init__(self):
        self.records = {}

    def record(self, key, value, exclude=None):
        self.records[key] = value


def test_teacher_diagnostics_reach_the_logs():
    from stable_baselines3.common.logger import Figure

    from curriculum.plr import PlrTeacher
    from tests.test_plr import play

    teacher = PlrTeacher(TaskEchoEnv.task_space, seed=0, buffer_size=10, min_fill=0.5)
    play(teacher, 40)
    callback = CurriculumCallback(teacher)
    logger = RecordingLogger()
    callback.model = SimpleNamespace(logger=logger)  # the callback logs through its model's logger
    for _ in range(10):
        callback.stats.recent_tasks.append(np.array([0.5, 0.5]))
        callback.stats.recent_returns.append(1.0)
        callback.stats.recent_success.append(False)
    callback.stats.log_scalars(logger, teacher)
    callback.stats.log_images(logger, teacher)
    stats = {
        k.removeprefix("curriculum/teacher/"): v for k, v in logger.records.items() if k.startswith("curriculum/teacher/")
    }
    assert stats["buffer_size"] == 10 and 0 < stats["replay_share"] < 1 and stats["score_max"] >= stats["score_mean"]
    assert isinstance(logger.records["curriculum/teacher_levels"], Figure)
    assert isinstance(logger.records["curriculum/tasks"], Figure)
