"""Callbacks shared by the run's pieces."""

from __future__ import annotations

from collections.abc import Callable

from stable_baselines3.common.callbacks import BaseCallback


class PeriodicCallback(BaseCallback):
    """Acts every ``every`` steps of the step counter: at the first step at or past each multiple of ``every``.

    The schedule is aligned to the counter when training starts, so a resumed run (or a second ``learn()``)
    continues it rather than replaying it. Subclasses implement :meth:`_on_period`.

    :param every: steps between two actions
    :param clock: the step counter (default: ``num_timesteps``, every environment step; a run whose budget counts
        trained steps gives the curriculum's count of them)
    """

    def __init__(self, every: int, clock: Callable[[], int] | None = None) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.clock = clock
        self._next = every

    @property
    def steps(self) -> int:
        """The step counter's value now."""
        return self.clock() if self.clock is not None else self.num_timesteps

    def _align(self) -> None:
        self._next = (self.steps // self.every + 1) * self.every

    def _on_training_start(self) -> None:
        self._align()

    def _on_step(self) -> bool:
        if self.steps >= self._next:
            self._align()
            self._on_period()
        return True

    def _on_period(self) -> None:
        raise NotImplementedError
