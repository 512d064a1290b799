"""Setter-Solver (Racaniere et al., ICLR 2020), as TeachMyAgent implements it; the networks are small torch models."""

from __future__ import annotations

import numpy as np
import torch as th
from torch import nn
from torch.nn import functional as F

from curriculum.base import Feedback, Teacher
from curriculum.goal_gan import mlp
from curriculum.spaces import BoxTaskSpace, Task

_MIN_SCALE = 1e-3


def _mlp(n_in: int, hidden: int, n_out: int, layers: int) -> nn.Sequential:
    return mlp([n_in, *[hidden] * layers, n_out], nn.LeakyReLU)


class _Coupling(nn.Module):
    """An affine coupling: the ``moved`` coordinates are scaled and shifted by functions of the others and of the
    feasibility condition (scale = 1e-3 + softplus(s), as the reference)."""

    def __init__(self, kept: list[int], moved: list[int], hidden: int, layers: int) -> None:
        super().__init__()
        self.kept, self.moved = kept, moved
        self.s = _mlp(len(kept) + 1, hidden, len(moved), layers)
        self.t = _mlp(len(kept) + 1, hidden, len(moved), layers)

    def _scale_shift(self, z: th.Tensor, condition: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        inputs = th.cat([z[:, self.kept], condition], dim=1)
        return _MIN_SCALE + F.softplus(self.s(inputs)), self.t(inputs)

    def forward(self, z: th.Tensor, condition: th.Tensor, log_p: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        scale, shift = self._scale_shift(z, condition)
        out = z.clone()
        out[:, self.moved] = z[:, self.moved] * scale + shift
        return out, log_p - th.log(scale).sum(dim=1)

    def inverse(self, z: th.Tensor, condition: th.Tensor, log_p: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        scale, shift = self._scale_shift(z, condition)
        out = z.clone()
        out[:, self.moved] = (z[:, self.moved] - shift) / scale
        return out, log_p - th.log(scale).sum(dim=1)


class _Setter(nn.Module):
    """A conditional RealNVP from N(0, I) to (0, 1)^d (a final sigmoid): ``blocks`` blocks of three couplings
    (left to right, right to left, interlaced), as the reference's ``FlatRnvp``."""

    def __init__(self, dim: int, blocks: int, hidden: int, layers: int) -> None:
        super().__init__()
        half, idx = dim // 2, list(range(dim))
        masks = [(idx[:half], idx[half:]), (idx[half:], idx[:half]), (idx[1::2], idx[::2])]
        self.couplings = nn.ModuleList(
            _Coupling(kept, moved, hidden, layers) for _ in range(blocks) for kept, moved in masks if moved
        )

    def _inverse_chain(self) -> list[_Coupling]:
        """The couplings last to first (typed: a ``ModuleList`` yields plain modules)."""
        return [c for c in reversed(self.couplings) if isinstance(c, _Coupling)]

    def sample(self, latent: th.Tensor, condition: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Goals in (0, 1)^d from latents, with their log-densities."""
        log_p = -0.5 * (latent**2).sum(dim=1)
        z = latent
        for coupling in self.couplings:
            z, log_p = coupling(z, condition, log_p)
        return th.sigmoid(z), log_p - (F.logsigmoid(z) + F.logsigmoid(-z)).sum(dim=1)

    def log_prob(self, goals: th.Tensor, condition: th.Tensor) -> th.Tensor:
        """Log-density of goals in (0, 1)^d (the inverse pass)."""
        z = th.logit(goals)
        log_p = -(F.logsigmoid(z) + F.logsigmoid(-z)).sum(dim=1)
        for coupling in self._inverse_chain():
            z, log_p = coupling.inverse(z, condition, log_p)
        return log_p - 0.5 * (z**2).sum(dim=1)

    def infer(self, goals: th.Tensor, condition: th.Tensor) -> th.Tensor:
        """The latents of goals."""
        z = th.logit(goals)
        log_p = th.zeros(len(goals))
        for coupling in self._inverse_chain():
            z, log_p = coupling.inverse(z, condition, log_p)
        return z


class SetterSolverTeacher(Teacher[BoxTaskSpace]):
    """Setter-Solver: a judge predicts success; a conditional flow sets tasks of a drawn feasibility.

    Each task comes from the setter (a conditional RealNVP, ``blocks`` blocks of 3 affine couplings with
    ``hidden``-unit networks, onto (0, 1)^d and then the box) given a feasibility f ~ U(0, 1). The judge (an MLP,
    3 x 64) learns the probability of success. Every ``update_frequency`` episodes, one Adam step (3e-4) on each,
    over the episodes since the last update: the judge's cross-entropy on successes; the setter's loss is validity
    (-log p of the tasks the student succeeded on, plus uniform noise up to ``loss_noise``, under their
    feasibilities) + feasibility ((judge logit of the regenerated tasks - logit f)^2) + coverage (mean log p of
    the regenerated tasks, i.e. entropy).

    As TeachMyAgent's ``SetterSolver`` (update every 100 episodes, noise 0.01, hidden 128, one step per update)
    with torch instead of TF1/Sonnet: plain MLPs (3 layers) in place of the highway networks of the couplings, own
    torch and numpy generators (the reference seeds TF's globally), and tasks matched to their episodes by value so
    that parallel environments may report in any order (the reference raises unless each episode follows its
    task). Needs the episodes' success flag.

    :param update_frequency: episodes between two updates of the judge and the setter
    :param loss_noise: upper bound of the uniform noise on successful tasks in the validity loss (unit box)
    :param hidden: units of the setter's coupling networks
    :param blocks: blocks of three couplings in the setter
    """

    supported_spaces = (BoxTaskSpace,)
    needs = "success"
    state_attrs = ("pending", "buffer", "updates")
    module_attrs = ("setter", "judge", "setter_optimizer", "judge_optimizer")

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        update_frequency: int = 100,
        loss_noise: float = 0.01,
        hidden: int = 128,
        blocks: int = 3,
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if update_frequency < 1 or not 0 <= loss_noise < 0.5 or hidden < 1 or blocks < 1:
            raise ValueError("need update_frequency >= 1, 0 <= loss_noise < 0.5, hidden >= 1 and blocks >= 1")
        self.update_frequency, self.loss_noise = update_frequency, loss_noise
        d = task_space.dim
        with th.random.fork_rng(devices=[]):  # initial weights from the teacher's seed, global generators untouched
            th.manual_seed(seed)
            self.setter = _Setter(d, blocks, hidden, 3)
            self.judge = _mlp(d, 64, 1, 3)
        self.setter_optimizer = th.optim.Adam(self.setter.parameters(), lr=3e-4)
        self.judge_optimizer = th.optim.Adam(self.judge.parameters(), lr=3e-4)
        self.pending: dict[bytes, list[tuple[np.ndarray, float]]] = {}  # task -> (unit goal, feasibility) in play
        self.buffer: list[tuple[np.ndarray, float, float]] = []  # (unit goal, feasibility, success) since the update
        self.updates = 0

    def _sample(self) -> Task:
        feasibility = float(self.rng.uniform(1e-8, 1.0))
        latent = th.as_tensor(self.rng.standard_normal((1, self.task_space.dim)), dtype=th.float32)
        with th.no_grad():
            goal, _ = self.setter.sample(latent, th.tensor([[feasibility]]))
        unit = np.clip(goal[0].numpy().astype(np.float64), 1e-6, 1 - 1e-6)
        task = self.task_space.denormalize(unit)
        self.pending.setdefault(task.tobytes(), []).append((unit, feasibility))
        return task

    def _update(self, task: Task, feedback: Feedback) -> None:
        key = np.asarray(task, dtype=np.float64).tobytes()
        if key in self.pending:
            unit, feasibility = self.pending[key].pop(0)
            if not self.pending[key]:
                del self.pending[key]
        else:  # a task it did not set (a resumed run's episode in flight): its own coordinates, an even chance
            unit, feasibility = np.clip(self.task_space.normalize(np.asarray(task)), 1e-6, 1 - 1e-6), 0.5
        self.buffer.append((unit, feasibility, float(feedback.success)))
        if len(self.buffer) >= self.update_frequency:
            self._train()
            self.buffer = []

    def _train(self) -> None:
        goals = th.as_tensor(np.array([g for g, _, _ in self.buffer]), dtype=th.float32)
        feasibility = th.as_tensor([[f] for _, f, _ in self.buffer], dtype=th.float32)
        success = th.as_tensor([[s] for _, _, s in self.buffer], dtype=th.float32)
        judge_loss = F.binary_cross_entropy_with_logits(self.judge(goals), success)
        self.judge_optimizer.zero_grad()
        judge_loss.backward()
        self.judge_optimizer.step()
        won = success[:, 0] == 1
        noise = th.as_tensor(self.rng.uniform(0, self.loss_noise, (int(won.sum()), goals.shape[1])), dtype=th.float32)
        with th.no_grad():
            latent = self.setter.infer(goals, feasibility)
        regenerated, log_p = self.setter.sample(latent, feasibility)
        loss = ((self.judge(regenerated) - th.logit(feasibility)) ** 2).mean() + log_p.mean()  # feasibility, coverage
        if won.any():  # validity: the tasks the student succeeded on are likely under their feasibilities
            succeeded = (goals[won] + noise).clamp(1e-4, 1 - 1e-4)
            loss = loss - self.setter.log_prob(succeeded, feasibility[won]).mean()
        self.setter_optimizer.zero_grad()
        loss.backward()
        self.setter_optimizer.step()
        self.updates += 1

    def stats(self) -> dict[str, float]:
        return {"updates": float(self.updates)}
