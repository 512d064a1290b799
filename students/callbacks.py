"""Callbacks shared by the run's pieces."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class PeriodicCallback(BaseCallback):
    """Acts every ``every`` steps of the step counter: at the first step at or past each multiple of ``every``.

    The schedule is aligned to ``num_timesteps`` when training starts, so a resumed run (or a second ``learn()``)
    continues it rather than replaying it. Subclasses implement :meth:`_on_period`.

    :param every: steps between two actions
    """

    def __init__(self, every: int) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self._next = every

    def _align(self) -> None:
        self._next = (self.num_timesteps // self.every + 1) * self.every

    def _on_training_start(self) -> None:
        self._align()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._align()
            self._on_period()
        return True

    def _on_period(self) -> None:
        raise NotImplementedError
