"""SFL: Sampling For Learnability (Rutherford et al., NeurIPS 2024), on box and discrete task spaces."""

from __future__ import annotations

from collections import deque

import numpy as np

from curriculum.base import Feedback, FeedbackError, Level, Teacher
from curriculum.spaces import BoxTaskSpace, DiscreteTaskSpace, Task, TaskSpace

_SEED_RANGE = 2**31 - 1


class SflTeacher(Teacher[TaskSpace]):
    """SFL: train on the levels the student solves sometimes, learnability p * (1 - p) from extra scoring rollouts.

    Every ``update_every`` training episodes (and before the first), ``n_candidates`` fresh random levels (task and
    level seed) are each played ``rollouts`` times by the current policy without learning from them (``train=False``:
    the masked student leaves them out of its updates, as Robust PLR's new levels); p is a level's success rate over
    its rollouts. The ``buffer_size`` levels of highest learnability p (1 - p) (+ 0.001 p to break ties toward easier
    ones, as one reference does) become the buffer. A training episode replays a buffer level with probability
    ``buffer_share`` and otherwise plays a fresh random level. The scoring rollouts are environment steps like any:
    ``stats()`` reports their share of the episodes (``scoring_share``).

    The paper's settings are for GPU-scale JAX environments (5,000 candidates, a buffer of 100-1,000, refresh every
    100 PPO updates); the defaults here are scaled to CPU budgets (100 candidates x 4 rollouts every 1,000 training
    episodes: about 29% of the episodes score). With an empty buffer every training level is fresh.

    :param n_candidates: fresh levels scored per refresh
    :param rollouts: scoring episodes per candidate (p is their success rate)
    :param buffer_size: levels kept (the top learnability)
    :param buffer_share: share of training episodes replaying a buffer level
    :param update_every: training episodes between two refreshes
    """

    supported_spaces = (BoxTaskSpace, DiscreteTaskSpace)
    masks_updates = True
    needs = "success, level seeds (scoring episodes are played without learning)"
    state_attrs = ("queue", "scores", "buffer", "train_episodes", "scoring_episodes", "since_refresh")

    def __init__(
        self,
        task_space: TaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        n_candidates: int = 100,
        rollouts: int = 4,
        buffer_size: int = 20,
        buffer_share: float = 0.5,
        update_every: int = 1000,
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if n_candidates < 1 or rollouts < 2 or not 1 <= buffer_size <= n_candidates or update_every < 1:
            raise ValueError("need n_candidates >= 1, rollouts >= 2, 1 <= buffer_size <= n_candidates, update_every >= 1")
        if not 0.0 <= buffer_share <= 1.0:
            raise ValueError(f"buffer_share must lie in [0, 1], got {buffer_share}")
        self.n_candidates, self.rollouts, self.buffer_size = n_candidates, rollouts, buffer_size
        self.buffer_share, self.update_every = buffer_share, update_every
        self.queue: deque[Level] = deque()  # scoring episodes still to hand out
        self.scores: dict[int, list] = {}  # level seed of a candidate -> [task, successes so far]
        self.buffer: list[tuple[Task, int]] = []  # (task, level seed) of the top learnability
        self.train_episodes = self.scoring_episodes = 0
        self.since_refresh = update_every  # refresh before the first training episode

    def _seed(self) -> int:
        return int(self.rng.integers(_SEED_RANGE))

    def sample_level(self) -> Level:
        if not self.queue and self.scores and self.since_refresh >= self.update_every:
            self._refresh()  # scoring episodes that never came back (an interrupted rollout): use what did
        if not self.queue and not self.scores and self.since_refresh >= self.update_every:
            self.since_refresh = 0
            for _ in range(self.n_candidates):
                task, seed = self.task_space.sample(self.rng), self._seed()
                self.scores[seed] = [task, []]
                self.queue.extend(Level(task, seed, train=False) for _ in range(self.rollouts))
        if self.queue:
            return self.queue.popleft()
        self.since_refresh += 1
        if self.buffer and self.rng.random() < self.buffer_share:
            task, seed = self.buffer[int(self.rng.integers(len(self.buffer)))]
            return Level(task, seed)
        return Level(self.task_space.sample(self.rng), self._seed())

    def _sample(self) -> Task:
        return self.sample_level().task

    def _update(self, task: Task, feedback: Feedback) -> None:
        if feedback.level_seed is None:
            raise FeedbackError("SflTeacher needs each episode's level seed (Feedback.level_seed)")
        candidate = self.scores.get(int(feedback.level_seed))
        if candidate is None:
            self.train_episodes += 1
            return
        self.scoring_episodes += 1
        candidate[1].append(bool(feedback.success))
        if all(len(outcomes) >= self.rollouts for _, outcomes in self.scores.values()):
            self._refresh()

    def _refresh(self) -> None:
        """Keep the candidates of highest learnability as the buffer."""
        ranked = []
        for seed, (task, outcomes) in self.scores.items():
            if not outcomes:
                continue
            p = float(np.mean(outcomes))
            ranked.append((p * (1 - p) + 0.001 * p, seed, task))
        ranked.sort(key=lambda entry: -entry[0])
        self.buffer = [(task, seed) for _, seed, task in ranked[: self.buffer_size]]
        self.scores = {}

    def stats(self) -> dict[str, float]:
        total = max(self.train_episodes + self.scoring_episodes, 1)
        return {"scoring_share": self.scoring_episodes / total, "buffer_size": float(len(self.buffer))}
