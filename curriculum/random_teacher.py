"""Random teacher (domain randomisation): the baseline every comparison includes."""

from __future__ import annotations

from curriculum.base import Feedback, Teacher
from curriculum.spaces import BoxTaskSpace, DiscreteTaskSpace, Task, TaskSpace


class RandomTeacher(Teacher[TaskSpace]):
    """Domain randomisation: every task uniformly at random from the space (box or discrete)."""

    supported_spaces = (BoxTaskSpace, DiscreteTaskSpace)

    def _sample(self) -> Task:
        return self.task_space.sample(self.rng)

    def _update(self, task: Task, feedback: Feedback) -> None:
        pass
