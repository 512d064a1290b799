"""Natively batched point-masses: the same transitions, infos, runs and evaluations as stepping envs one by one."""

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from environments.point_mass import PointMassGateEnv
from students.loop.evaluation import evaluate
from students.run.train import train
from students.loop.vec_env import BatchVecEnv, make_vec_env
from tests.test_runs import point_mass, same

KINDS = [{}, {"dynamics": "semi-implicit", "gate_sensor": 2.0}, {"observation_mode": "privileged", "task_visible": False}]


def play(batched: bool, env_kwargs: dict, n_envs: int = 6, steps: int = 500) -> list:
    """Every transition of ``n_envs`` sub-envs under random forces beyond the action bounds, with per-index tasks
    and level seeds; Monitor's episode wall time aside."""
    env = make_vec_env("point-mass", n_envs, seed=3, env_kwargs=env_kwargs, batched=batched)
    assert isinstance(env, BatchVecEnv if batched else DummyVecEnv)
    rng = np.random.default_rng(1)
    for i in range(n_envs):
        env.env_method("set_task", np.array([-3.0 + i, 0.5 + i, 0.5 * i]), 100 + i, indices=[i])
    transitions = [env.reset()]
    for t in range(steps):
        if t % 37 == 0:  # a new pending task now and then, as a teacher sends them
            env.env_method("set_task", rng.uniform([-4, 0.5, 0], [4, 8, 4]), indices=[t % n_envs])
        obs, rewards, dones, infos = env.step(rng.uniform(-12, 12, (n_envs, 2)).astype(np.float32))
        assert all(("episode" in info) == done for info, done in zip(infos, dones, strict=True))
        infos = [{k: v for k, v in info.items() if k != "episode"} for info in infos]
        transitions.append((obs, rewards, dones, infos))
    transitions.append(env.env_method("snapshot"))
    env.close()
    return transitions


@pytest.mark.parametrize("env_kwargs", KINDS)
def test_batched_point_masses_give_exactly_the_transitions_of_single_envs(env_kwargs):
    single, batched = play(False, env_kwargs), play(True, env_kwargs)
    episodes = sum(int(t[2].sum()) for t in single[1:-1])
    crashes = sum(info["episode_outcome"]["length"] < 100 for t in single[1:-1] for info in t[3] if "episode_outcome" in info)
    assert episodes > 25 and crashes > 5  # many episodes end, some at the wall: the gate and crash paths are exercised
    assert same(single[:-1], batched[:-1])
    for one, other in zip(single[-1], batched[-1], strict=True):  # the same state to checkpoint
        assert same(one["env"], other["env"]) and one["outcome"] == other["outcome"]


def test_a_wrapped_env_falls_back_to_stepping_one_by_one():
    assert isinstance(make_vec_env("point-mass", 2, seed=0, env_kwargs={"history": 2}), DummyVecEnv)
    assert isinstance(make_vec_env("point-mass", 2, seed=0, batched=False), DummyVecEnv)


def test_a_run_is_the_same_batched_or_not(tmp_path):
    metrics = {}
    for batched in (True, False):
        metrics[batched] = train(point_mass("ppo", "alp-gmm", 1500, batched=batched), tmp_path / str(batched))
    assert metrics[True]["final_eval"] == metrics[False]["final_eval"]
    assert (tmp_path / "True" / "eval.csv").read_text() == (tmp_path / "False" / "eval.csv").read_text()
    assert (tmp_path / "True" / "teacher.pkl").read_bytes() == (tmp_path / "False" / "teacher.pkl").read_bytes()


def test_batched_evaluation_plays_each_task_as_a_single_env_would():
    def steer(row: np.ndarray) -> np.ndarray:  # toward the gate's centre, then the goal
        x, y, vx, vy, gate_x = row[:5]
        target = (gate_x, -1.0) if y > 0.3 else (0.0, -3.0)
        return np.array([3 * (target[0] - x) - 2 * vx, 3 * (target[1] - y) - 2 * vy])

    def policy(obs):  # row by row, so a batch and a single observation give the same action
        rows = np.array([steer(row) for row in np.atleast_2d(obs)])
        return rows if np.ndim(obs) == 2 else rows[0]

    tasks = PointMassGateEnv().test_set("default")
    result = evaluate(policy, "point-mass", tasks, seed=5, episodes_per_task=2)
    env, expected = PointMassGateEnv(), []
    for task in tasks:
        for k in range(2):
            env.set_task(task, level_seed=5 + k)
            obs, _ = env.reset(seed=5 + k)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy(obs))
                total += reward
                done = terminated or truncated
            expected.append((tuple(float(v) for v in task), total, env.is_success(total, info)))
    assert [(r.task, r.episode_return, r.success) for r in result.results] == expected
    assert 0 < sum(r.success for r in result.results) < len(expected)  # both outcomes occur


def test_a_trained_steps_budget_counts_exactly_the_transitions_the_student_learned_from(tmp_path, monkeypatch):
    from students.loop.masked import MaskedPPO
    from students.analysis.report import collect

    learned: list[int] = []
    update = MaskedPPO.train

    def recording_train(self):
        learned.append(int(self.rollout_buffer.n_unmasked))
        update(self)

    monkeypatch.setattr(MaskedPPO, "train", recording_train)
    config = point_mass("ppo", "robust-plr", 2000, budget="trained-steps", eval_every=1000, teacher_params={"buffer_size": 8})
    metrics = train(config, tmp_path / "point-mass" / "robust-plr" / "ppo" / "seed0")
    assert metrics["trained_steps"] == sum(learned) and 2000 <= sum(learned) < 2000 + 256  # stops at a rollout's end
    # every rollout played (and one step of the rollout the budget stopped), more than it trained on: some episodes
    # were only scored
    assert metrics["timesteps"] == 256 * len(learned) + 2 > metrics["trained_steps"]
    rows = (tmp_path / "point-mass" / "robust-plr" / "ppo" / "seed0" / "eval.csv").read_text().splitlines()
    trained_at = sorted({int(r.split(",")[-1]) for r in rows[1:]})
    assert trained_at[0] >= 1000 and trained_at[-1] == metrics["trained_steps"]  # evaluations follow trained steps
    curve = collect(tmp_path).curves
    assert curve["timesteps"].max() == metrics["trained_steps"]  # the report's x-axis is the budget's unit


def test_a_run_on_a_trained_steps_budget_resumes_exactly(tmp_path):
    from tests.test_runs import interrupt_at

    config = point_mass("ppo", "robust-plr", 1500, budget="trained-steps", eval_every=500, teacher_params={"buffer_size": 8})
    whole = train(config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=interrupt_at(700))
    assert train(config, tmp_path / "cut", resume=True) == whole
    for name in ("metrics.json", "eval.csv"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "whole" / name).read_text(), name
