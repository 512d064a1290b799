"""Saved SB3 policies: a run folder's ``model.zip``, its frozen policy (an expert to kickstart or distil from, a
model to evaluate), and the one line that says when a model cannot read or act in an environment."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.save_util import load_from_zip_file
from students.run import layout


class PolicyFileError(ValueError):
    """A path that holds no usable saved policy (one line naming the problem)."""


def model_path(path: Path, role: str = "expert") -> Path:
    """The ``model.zip`` of a run folder (its final model, else its last checkpoint) or the zip itself.

    :raises PolicyFileError: no such file or folder, or a folder without a model
    """
    path = Path(path)
    if path.is_dir():
        for candidate in (path / layout.MODEL, path / layout.CHECKPOINT / layout.MODEL):
            if candidate.is_file():
                return candidate
        raise PolicyFileError(f"{role} '{path}' is a folder without a model.zip (a run folder is expected)")
    if not path.is_file():
        raise PolicyFileError(f"{role} '{path}' does not exist (give a run folder or a model.zip)")
    return path


def load_policy(path: Path, device: th.device | str = "cpu", role: str = "expert") -> BasePolicy:
    """The frozen policy of a saved SB3 model (its class is read from the zip).

    :raises PolicyFileError: not an SB3 model
    """
    zip_path = model_path(path, role)
    try:
        data, params, _ = load_from_zip_file(zip_path, device=device)
        if data is None or params is None:
            raise PolicyFileError(f"{role} '{path}' holds no saved policy (its zip has no data or parameters)")
        kwargs = dict(data.get("policy_kwargs") or {})
        if data.get("use_sde") and "use_sde" not in kwargs and issubclass(data["policy_class"], ActorCriticPolicy):
            kwargs["use_sde"] = True
        with th.random.fork_rng():  # building a policy draws initial weights: leave the run's generators untouched
            policy = data["policy_class"](data["observation_space"], data["action_space"], lambda _: 0.0, **kwargs)
        policy.load_state_dict(params["policy"])
    except PolicyFileError:
        raise
    except Exception as exc:  # a corrupt or foreign file: one line, not a traceback
        raise PolicyFileError(f"{role} '{path}' is not a Stable-Baselines3 model ({type(exc).__name__}: {exc})") from None
    policy.to(device)
    policy.set_training_mode(False)
    policy.requires_grad_(False)
    return policy


class Actor:
    """``actor(obs) -> action`` of a model or policy, with memory for a recurrent one (sb3-contrib's LSTM
    policies): its hidden states are carried from step to step and cleared by :meth:`reset` at an episode's start.

    :param model: an SB3 model or policy (anything with ``predict``)
    :param deterministic: the policy's mode action (else a sampled one)
    """

    def __init__(self, model: Any, deterministic: bool = True) -> None:
        policy = getattr(model, "policy", model)
        self.model, self.deterministic = model, deterministic
        self.recurrent = bool(getattr(policy, "lstm_actor", None) is not None)
        self.state: Any = None
        self.starts = np.ones(1, dtype=bool)

    def reset(self, n: int = 1) -> None:
        """New episodes begin, in ``n`` environments stepped together."""
        self.state, self.starts = None, np.ones(n, dtype=bool)

    def keep(self, rows: np.ndarray) -> None:
        """Only the episodes at ``rows`` (a boolean mask) go on."""
        if self.state is not None:
            self.state = tuple(s[:, rows] for s in self.state)
        self.starts = self.starts[rows]

    def __call__(self, obs: Any) -> np.ndarray:
        if not self.recurrent:
            return self.model.predict(obs, deterministic=self.deterministic)[0]
        action, self.state = self.model.predict(
            obs, state=self.state, episode_start=self.starts, deterministic=self.deterministic
        )
        self.starts = np.zeros_like(self.starts)
        return action


def policy_for_env(path: Path, env: Any) -> Callable[[Any], np.ndarray]:
    """The deterministic policy of a saved SB3 model (or run folder) that reads and acts in ``env``'s spaces.

    :raises PolicyFileError: not an SB3 model, or one of other spaces
    """
    policy = load_policy(path, role="model")
    problem = space_mismatch(policy, env, path)
    if problem:
        raise PolicyFileError(problem)
    return Actor(policy)


def space_mismatch(model: Any, env: Any, path: Path | str) -> str | None:
    """One line naming both spaces when a saved model (or policy) cannot read or act in ``env``, else ``None``."""
    if model.observation_space == env.observation_space and model.action_space == env.action_space:
        return None
    return (
        f"model '{path}' reads {model.observation_space} and acts in {model.action_space}; this environment "
        f"gives {env.observation_space} and takes {env.action_space}"
    )
