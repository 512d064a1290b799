"""GoalGAN (Florensa et al., ICML 2018), as TeachMyAgent implements it; the GAN is a small torch model."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch as th
from torch import nn

from curriculum.base import Feedback, Teacher
from curriculum.spaces import BoxTaskSpace, Task


def mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them."""
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class GoalGanTeacher(Teacher[BoxTaskSpace]):
    """GoalGAN: a least-squares GAN that generates tasks of intermediate difficulty (GOID) for the student.

    A generated task (the generator's output plus Gaussian noise of ``noise_level`` of each range, clipped to the
    box) is played ``n_rollouts`` times in a row; its mean success labels it GOID when within
    [``goid_low``, ``goid_high``]. Every ``update_size`` labelled tasks the GAN trains ``gan_iterations`` steps
    (LSGAN, a = -1, b = 1, c = 0: the discriminator scores GOID tasks 1, other tasks and generated ones -1; the
    generator pushes its samples to 0); without a GOID task in the batch it skips training. With probability
    ``p_old`` a task is an earlier mastered one (mean success above ``goid_high``, kept when farther than
    ``buffer_distance`` of the range's norm from the others) plus the same noise. Before the first training the
    generator is untrained (its outputs near the box's centre, spread by the noise), as in the reference without
    pre-training.

    As TeachMyAgent's ``GoalGAN`` (defaults from its experiment scripts: noise 0.01, 2 rollouts, GOID 0.25-0.75,
    p_old 0.2, update every 100 tasks, 250 iterations, generator 256-256, discriminator 128-128, distance 0.01),
    with torch instead of TF1 (RMSprop, learning rate 1e-3 as the original GAN code) and its own torch and numpy
    generators (the reference seeds the global ones). Needs the episodes' success flag.

    :param noise_level: std of the Gaussian noise added to every proposed task, share of each range
    :param n_rollouts: episodes played on a generated task before it is labelled
    :param goid_low: lowest mean success of a task of intermediate difficulty
    :param goid_high: highest mean success of a task of intermediate difficulty
    :param p_old: probability of replaying an earlier mastered task
    :param update_size: labelled tasks between two trainings of the GAN
    :param gan_iterations: training steps of the GAN per update
    :param buffer_distance: smallest distance between two kept mastered tasks, share of the range's norm
    :param pretrain: before the first task, train the GAN 500 steps on 1000 uniform tasks of the environment's
        easy region (the whole box if it has none), all labelled GOID (the reference's use_pretrained_samples)
    """

    supported_spaces = (BoxTaskSpace,)
    state_attrs = ("queue", "pending", "contexts", "labels", "old_tasks", "trainings")
    module_attrs = ("generator", "discriminator", "g_optimizer", "d_optimizer")
    needs = "success"

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        noise_level: float = 0.01,
        n_rollouts: int = 2,
        goid_low: float = 0.25,
        goid_high: float = 0.75,
        p_old: float = 0.2,
        update_size: int = 100,
        gan_iterations: int = 250,
        buffer_distance: float = 0.01,
        pretrain: bool = False,
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if not (0 <= goid_low <= goid_high <= 1 and 0 <= p_old <= 1 and n_rollouts >= 1 and update_size >= 1):
            raise ValueError("need 0 <= goid_low <= goid_high <= 1, 0 <= p_old <= 1, n_rollouts >= 1, update_size >= 1")
        self.noise_level, self.n_rollouts, self.goid = noise_level, n_rollouts, (goid_low, goid_high)
        self.p_old, self.update_size, self.gan_iterations = p_old, update_size, gan_iterations
        self.min_distance = buffer_distance * float(np.linalg.norm(task_space.span))
        d = task_space.dim
        with th.random.fork_rng(devices=[]):  # initial weights from the teacher's seed, global generators untouched
            th.manual_seed(seed)
            self.generator = mlp([d, 256, 256, d], nn.ReLU)
            self.discriminator = mlp([d, 128, 128, 1], nn.LeakyReLU)
        self.g_optimizer = th.optim.RMSprop(self.generator.parameters(), lr=1e-3)
        self.d_optimizer = th.optim.RMSprop(self.discriminator.parameters(), lr=1e-3)
        self.torch_rng = th.Generator().manual_seed(seed)
        self.queue: deque[np.ndarray] = deque()  # a generated task's further rollouts
        self.pending: dict[bytes, list[list[bool]]] = {}  # generated task -> success lists of its pending labels
        self.contexts: list[np.ndarray] = []
        self.labels: list[bool] = []
        self.old_tasks: list[np.ndarray] = []
        self.trainings = 0
        self.pretrain, self.start_space = pretrain, task_space

    # -- task <-> the GAN's [-1, 1] box ----------------------------------------------------------------------
    def _to_unit(self, tasks: np.ndarray) -> th.Tensor:
        centre, half = (self.task_space.low + self.task_space.high) / 2, self.task_space.span / 2
        return th.as_tensor((np.asarray(tasks) - centre) / half, dtype=th.float32)

    def _from_unit(self, unit: th.Tensor) -> np.ndarray:
        centre, half = (self.task_space.low + self.task_space.high) / 2, self.task_space.span / 2
        return centre + unit.detach().numpy().astype(np.float64) * half

    def _generate(self, n: int) -> th.Tensor:
        return self.generator(th.randn(n, self.task_space.dim, generator=self.torch_rng))

    # -- the teacher interface ----------------------------------------------------------------------------------
    def prepare(self, env: Any) -> None:
        self.start_space = getattr(env, "easy_task_space", None) or self.task_space

    def _sample(self) -> Task:
        if self.pretrain and self.trainings == 0:
            start = self.start_space
            tasks = start.low + self.rng.random((1000, start.dim)) * (start.high - start.low)
            self._train(tasks, np.ones(len(tasks), dtype=np.float32), iterations=500)
        if self.queue:
            return self.queue.popleft()
        noise = self.noise_level * self.task_space.span * self.rng.standard_normal(self.task_space.dim)
        if self.old_tasks and self.rng.random() < self.p_old:
            return self.task_space.clip(self.old_tasks[int(self.rng.integers(len(self.old_tasks)))] + noise)
        with th.no_grad():
            task = self.task_space.clip(self._from_unit(self._generate(1))[0] + noise)
        self.pending.setdefault(task.tobytes(), []).append([])
        self.queue.extend(task.copy() for _ in range(self.n_rollouts - 1))
        return task

    def _update(self, task: Task, feedback: Feedback) -> None:
        key = np.asarray(task, dtype=np.float64).tobytes()
        if key not in self.pending:
            return  # a replayed old task: not labelled (as the reference)
        outcomes = self.pending[key][0]
        outcomes.append(bool(feedback.success))
        if len(outcomes) < self.n_rollouts:
            return
        mean = float(np.mean(outcomes))
        self.contexts.append(np.asarray(task, dtype=np.float64).copy())
        self.labels.append(self.goid[0] <= mean <= self.goid[1])
        if mean > self.goid[1] and all(np.linalg.norm(task - old) > self.min_distance for old in self.old_tasks):
            self.old_tasks.append(np.asarray(task, dtype=np.float64).copy())
        del self.pending[key][0]
        if not self.pending[key]:
            del self.pending[key]
        if len(self.contexts) >= self.update_size:
            if any(self.labels):
                self._train(np.array(self.contexts), np.array(self.labels, dtype=np.float32))
            self.contexts, self.labels = [], []

    def _train(self, contexts: np.ndarray, labels: np.ndarray, iterations: int | None = None) -> None:
        """LSGAN (a = -1, b = 1, c = 0) on the labelled tasks."""
        real, y = self._to_unit(contexts), th.as_tensor(labels)[:, None]
        for _ in range(iterations or self.gan_iterations):
            fake = self._generate(len(real)).detach()
            d_real, d_fake = self.discriminator(real), self.discriminator(fake)
            d_loss = (y * (d_real - 1) ** 2 + (1 - y) * (d_real + 1) ** 2).mean() + ((d_fake + 1) ** 2).mean()
            self.d_optimizer.zero_grad()
            d_loss.backward()
            self.d_optimizer.step()
            g_loss = (self.discriminator(self._generate(len(real))) ** 2).mean()
            self.g_optimizer.zero_grad()
            g_loss.backward()
            self.g_optimizer.step()
        self.trainings += 1

    def stats(self) -> dict[str, float]:
        return {"trainings": float(self.trainings), "old_tasks": float(len(self.old_tasks))}

    def plot_levels(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        if not self.contexts:
            return None
        return np.array(self.contexts), np.array(self.labels, dtype=float), "GOID label"

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "torch_rng": self.torch_rng.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.torch_rng.set_state(state["torch_rng"])
