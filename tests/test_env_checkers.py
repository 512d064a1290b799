"""Every teachrl environment passes the ecosystem's own checkers (gymnasium's and SB3's), in every observation
mode and with a history; builds through ``gymnasium.make`` with teachrl's keywords; copies and pickles mid-episode
into an env that continues exactly; and never shares its task with the infos it returns."""

import copy
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from curriculum.spaces import TaskSpaceError
from environments.registry import ENVIRONMENTS, make_env

TRAINABLE = [name for name, entry in ENVIRONMENTS.items() if entry.trainable]
#: gymnasium's and SB3's advice, not faults: the point-mass and pendulum keep their references' action ranges
#: (SPDL's [-10, 10] force, gymnasium's [-2, 2] torque), and the walkers' and classics' observations are unbounded
ADVICE = (".*symmetric and normalized.*", ".*observation space (minimum|maximum) value is -?infinity.*")


def box_actions(name: str) -> bool:
    return isinstance(make_env(name).action_space, gym.spaces.Box)


VARIANTS = [(name, kwargs) for name in TRAINABLE for kwargs in ({}, {"observation_mode": "privileged"})]
VARIANTS += [(name, {"history": 2}) for name in TRAINABLE if box_actions(name)]


@pytest.mark.parametrize(
    ("name", "kwargs"), VARIANTS, ids=[f"{n}-{'-'.join(map(str, k.values())) or 'plain'}" for n, k in VARIANTS]
)
def test_gymnasium_and_sb3_check_every_env(name, kwargs):
    gym_id = ENVIRONMENTS[name].gym_id
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for advice in ADVICE:
            warnings.filterwarnings("ignore", message=advice)
        # through gymnasium.make (a spec: the checker also tries the other render modes), with teachrl's keywords
        env = gym.make(gym_id, **kwargs)
        gymnasium_check_env(env.unwrapped)
        sb3_check_env(make_env(name, **kwargs))
    rendered = gym.make(gym_id, render_mode="rgb_array", **kwargs)
    rendered.reset(seed=0)
    assert rendered.render().ndim == 3


@pytest.mark.parametrize("name", TRAINABLE)
def test_infos_hold_fresh_task_arrays_and_a_refused_set_task_leaves_nothing_pending(name):
    env = make_env(name)
    task = env.task_space.sample(np.random.default_rng(0))
    env.set_task(task, level_seed=3)
    _, info = env.reset(seed=0)
    info["task"][:] = -1.0  # a consumer writing into an info
    assert np.array_equal(env.task, task) and np.array_equal(env.task_info()["task"], task)
    with pytest.raises(TaskSpaceError, match="level_seed must be a non-negative integer"):
        env.set_task(task, level_seed=-1)
    assert not env.has_pending_task()
    with pytest.raises(AttributeError):
        gym.make(ENVIRONMENTS[name].gym_id).set_task(task)  # gymnasium's wrappers hide it, as documented
    gym.make(ENVIRONMENTS[name].gym_id).unwrapped.set_task(task)


def _play(env, actions):
    return [env.step(a)[:2] for a in actions]


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_copy_or_a_pickle_mid_episode_continues_exactly(name):
    env = make_env(name)
    env.set_task(env.default_task, level_seed=5)
    env.reset(seed=1)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(12)]
    _play(env, actions[:6])
    env.set_task(env.default_task, level_seed=9)  # a pending task carries over too
    copies = [copy.deepcopy(env), pickle.loads(pickle.dumps(env))]
    expected = _play(env, actions[6:])
    for twin in copies:
        assert twin.has_pending_task()
        for (obs_a, reward_a), (obs_b, reward_b) in zip(expected, _play(twin, actions[6:]), strict=True):
            for key in obs_a if isinstance(obs_a, dict) else [None]:
                a, b = (obs_a[key], obs_b[key]) if key else (obs_a, obs_b)
                np.testing.assert_array_equal(a, b)
            assert reward_a == reward_b
    fresh = pickle.loads(pickle.dumps(make_env(name)))  # a fresh env pickles too
    assert type(fresh) is type(env)
