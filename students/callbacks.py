"""Callbacks shared by the run's pieces."""

from __future__ import annotations

from collections.abc import Callable

from stable_baselines3.common.callbacks import BaseCallback


class PeriodicCallback(BaseCallback):
    """Acts every ``every`` steps of the step counter: at the first step at or past each multiple of ``every``,
    or, with ``between_rollouts``, at the first rollout start after that step (after the student's update on the
    rollout that reached it, so that what the action sees is the model the step counter describes), or at the end
    of ``learn()`` (after its last update) when no rollout starts after it.

    The schedule is aligned to the counter when training starts, so a resumed run (or a second ``learn()``)
    continues it rather than replaying it. Subclasses implement :meth:`_on_period`.

    :param every: steps between two actions
    :param clock: the step counter (default: ``num_timesteps``, every environment step; a run whose budget counts
        trained steps gives the curriculum's count of them)
    """

    def __init__(self, every: int, clock: Callable[[], int] | None = None, between_rollouts: bool = False) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.clock = clock
        self.between_rollouts = between_rollouts
        self._next = every
        self.due = False  # between_rollouts: a multiple was passed, the action waits for the next rollout start

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
            if self.between_rollouts:
                self.due = True
            else:
                self._on_period()
        return True

    def _on_rollout_start(self) -> None:
        if self.due:
            self.due = False
            self._on_period()

    def _on_training_end(self) -> None:
        # after learn()'s last update: an action due in the last rollout sees the final model
        if self.due:
            self.due = False
            self._on_period()

    def _on_period(self) -> None:
        raise NotImplementedError
