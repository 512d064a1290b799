"""Pictures of a task: roll a policy out on an environment and save the frames as a PNG or a GIF."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

Policy = Callable[[Any], np.ndarray]


def zero_policy(env: Any) -> Policy:
    """Always the zero action."""
    return lambda obs: np.zeros(env.action_space.shape, dtype=env.action_space.dtype)


def random_policy(env: Any, seed: int = 0) -> Policy:
    """Uniform random actions, seeded."""
    env.action_space.seed(seed)
    return lambda obs: env.action_space.sample()


def parse_task(text: str, env: Any) -> Any:
    """``NAME=VALUE,...`` to a task of ``env``; dimensions not given keep the environment's default task.

    :raises ValueError: a malformed part, an unknown or repeated dimension, a value that is not a number or is
        out of bounds (the message names the dimensions)
    """
    names = env.task_space.names
    values = dict(zip(names, np.asarray(env.default_task, dtype=float).tolist(), strict=True))
    given: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep:
            raise ValueError(f"--task '{part}' must look like NAME=VALUE; dimensions: {', '.join(names)}")
        if key not in values:
            raise ValueError(f"--task: unknown dimension '{key}'; valid: {', '.join(names)}")
        if key in given:
            raise ValueError(f"--task gives '{key}' twice; give each dimension once")
        given.add(key)
        try:
            values[key] = float(value)
        except ValueError:
            raise ValueError(f"--task: '{value}' is not a number (dimension {key})") from None
    try:
        return env.task_space.validate(values)
    except ValueError as exc:
        raise ValueError(f"--task: {exc}") from None


def rollout_frames(
    env: Any, policy: Policy, task: Any, seed: int = 0, max_steps: int = 2000, every: int = 1, level: Any = None
) -> tuple[list[np.ndarray], float, dict[str, Any]]:
    """Play one episode of ``task``, or of ``level`` itself when given (an env with structured levels), rendering
    every ``every`` steps, first and last frames always.

    :return: the frames, the episode return and the final step's info
    """
    if level is None:
        env.set_task(task, level_seed=seed)
    else:
        env.unwrapped.set_level(level)
    obs, info = env.reset(seed=seed)
    frames = [env.render()]
    episode_return = 0.0
    for t in range(max_steps):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        episode_return += float(reward)
        done = terminated or truncated or t == max_steps - 1
        if done or (t + 1) % every == 0:
            frames.append(env.render())
        if done:
            break
    return frames, episode_return, info


def save_frames(frames: list[np.ndarray], path: Path, fps: int = 25) -> None:
    """Write the last frame as a PNG (``.png``) or all frames as an animated GIF (``.gif``)."""
    suffix = path.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ValueError(f"output must end in .png or .gif, got '{path.name}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    if suffix == ".png":
        images[-1].save(path)
    else:
        images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, 1000 // fps), loop=0)
