"""PAIRED (Dennis et al. 2020): an adversary that builds levels, trained to maximise the student's regret.

The cycle is dcd's (``envs/runners/adversarial_runner.py``, ``run()``), one per rollout cycle of the loop
(:class:`students.loop.curriculum.CurriculumCallback`, ``cycle == "rollout"``):

1. the adversary builds one level per parallel environment (:meth:`PairedTeacher.begin_rollout`);
2. the protagonist (the run's student) plays its rollout on those levels, each sub-environment replaying its level
   after every episode, as dcd's agents reset to the adversary's level; the episodes it completes reach the
   teacher through :meth:`~curriculum.base.Teacher.update` (those the cycle's end cuts do not count, as in dcd,
   whose ``rollout_returns`` hold completed episodes only);
3. the antagonist (a second student of the same algorithm and hyperparameters, its own streams:
   :mod:`students.loop.paired`) plays a rollout on the same levels and reports its completed episodes
   (:meth:`PairedTeacher.record_antagonist`);
4. per level, regret = max antagonist return - mean protagonist return, clipped at 0 (dcd's
   ``_compute_env_return``; a level with no completed episode counts 0 for that student, as dcd's zeros);
   ``flexible=True`` is dcd's ``flexible_paired``: the student with the better best return plays the antagonist's
   role on that level;
5. at the next cycle's start the adversary takes a PPO update with the regret as the final reward of each level's
   construction episode (dcd's ``replace_final_return``), then builds the next levels. Both students take their own
   PPO updates after their rollouts.

Two adversaries (``adversary``):

- ``steps`` (where the environment offers ``level_builder``: the maze), dcd's maze adversary: it builds the level
  one placement at a time (:class:`environments.maze_levels.MazeBuilder`: the goal, the agent, then ``n_blocks``
  walls, or the goal and agent last), seeing the level so far, the time step and a random vector z (dimension 50,
  uniform in [0, 1), drawn anew at every step as dcd's ``generate_random_z``). Its network is dcd's
  ``MultigridNetwork``: a 3x3 convolution of 16 filters over the level's planes, the time step one-hot through a
  linear layer of 5, z, an LSTM of 256 (``recurrent=False``: a linear layer of 256 with ReLU), then actor and
  critic heads of one tanh layer of 32. PPO runs over whole construction episodes from a zero LSTM state.
- ``box`` (any box task space), the issue's one-step adversary: a Gaussian policy over the task box, rescaled to
  [-1, 1] (the action is clipped there, its log-probability is of the unclipped draw), from z through two tanh
  layers of 64; a state-independent log std, initial 0.

Defaults are minimax's maze config where it gives them (adversary entropy 0.05, PPO 5 epochs, gamma 0.995, GAE
lambda 0.98) and dcd's otherwise (learning rate 1e-4, Adam eps 1e-5, clip 0.2, value loss 0.5 with a clipped
value loss, gradient norm 0.5, one minibatch, advantages normalised per update).

Decisions (not in the references): the adversary's draws (actions, z, an agent moved off the goal, the heading)
come from the teacher's own generator, so a run is reproducible from its seed, and its networks are initialised
under that seed without touching torch's global generator. A level gets a fresh level seed, by which its episodes
are credited to it (dcd credits by process index). Levels are not made solvable: PAIRED's regret is 0 on a level
neither student solves, which is how it learns to avoid them.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, cast

import numpy as np
import torch as th
from torch import nn

from curriculum.base import Feedback, Level, Teacher
from curriculum.spaces import BoxTaskSpace, Task

ADVERSARIES = ("auto", "steps", "box")


def _seeded(seed: int) -> th.Generator:
    return th.Generator().manual_seed(int(seed))


def _init(module: nn.Module, generator: th.Generator) -> None:
    """Orthogonal weights and zero biases drawn from ``generator`` (dcd initialises its layers orthogonally)."""
    for param in module.parameters():
        if param.dim() >= 2:
            flat = th.empty(param.shape[0], int(np.prod(param.shape[1:])))
            flat.normal_(generator=generator)
            q, r = th.linalg.qr(flat if flat.shape[0] >= flat.shape[1] else flat.T)
            q = q * th.sign(th.diagonal(r))
            with th.no_grad():
                param.copy_((q if flat.shape[0] >= flat.shape[1] else q.T).reshape(param.shape))
        else:
            with th.no_grad():
                param.zero_()


class StepAdversary(nn.Module):
    """dcd's maze adversary network (see the module docstring): inputs ``(T, B, ...)``, outputs logits and values."""

    def __init__(self, size: int, n_actions: int, n_steps: int, z_dim: int, hidden: int, recurrent: bool) -> None:
        super().__init__()
        self.n_steps, self.recurrent = n_steps, recurrent
        self.conv = nn.Conv2d(3, 16, 3)
        self.time = nn.Linear(n_steps + 1, 5)
        width = (size - 2) ** 2 * 16 + 5 + z_dim
        self.core: nn.Module = nn.LSTM(width, hidden) if recurrent else nn.Sequential(nn.Linear(width, hidden), nn.ReLU())
        self.actor = nn.Sequential(nn.Linear(hidden, 32), nn.Tanh(), nn.Linear(32, n_actions))
        self.critic = nn.Sequential(nn.Linear(hidden, 32), nn.Tanh(), nn.Linear(32, 1))

    def embed(self, image: th.Tensor, time: th.Tensor, z: th.Tensor) -> th.Tensor:
        steps, batch = image.shape[:2]
        conv = th.relu(self.conv(image.reshape(steps * batch, *image.shape[2:])).reshape(steps, batch, -1))
        onehot = nn.functional.one_hot(time.long(), self.n_steps + 1).float()
        return th.cat([conv, self.time(onehot), z], dim=-1)

    def forward(self, image: th.Tensor, time: th.Tensor, z: th.Tensor, memory: Any = None) -> tuple[th.Tensor, th.Tensor, Any]:
        x = self.embed(image, time, z)
        if self.recurrent:
            x, memory = self.core(x, memory)
        else:
            x = self.core(x)
        return self.actor(x), self.critic(x).squeeze(-1), memory


class BoxAdversary(nn.Module):
    """The one-step adversary of a box task space: a Gaussian over [-1, 1]^dim from z (see the module docstring)."""

    def __init__(self, z_dim: int, dim: int, hidden: int = 64) -> None:
        super().__init__()
        def mlp(out: int) -> nn.Sequential:
            layers = (nn.Linear(z_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out))
            return nn.Sequential(*layers)

        self.actor, self.critic = mlp(dim), mlp(1)
        self.log_std = nn.Parameter(th.zeros(dim))

    def forward(self, z: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.actor(z), self.critic(z).squeeze(-1)


def regrets(protagonist: list[list[float]], antagonist: list[list[float]], flexible: bool = False) -> np.ndarray:
    """dcd's ``_compute_env_return`` per level, from each student's completed-episode returns on it (an empty list
    counts 0, as dcd's zeros): ``max(antagonist) - mean(protagonist)`` clipped at 0; ``flexible``: the student with
    the better best return plays the antagonist, the other's mean is subtracted."""

    def stat(returns: list[float], how: Any) -> float:
        return float(how(returns)) if returns else 0.0

    out = np.zeros(len(protagonist))
    for i, (pro, ant) in enumerate(zip(protagonist, antagonist, strict=True)):
        if flexible and stat(pro, np.max) >= stat(ant, np.max):
            # dcd: the antagonist's index is where its max is strictly better; elsewhere the protagonist leads
            best, mean = stat(pro, np.max), stat(ant, np.mean)
        else:
            best, mean = stat(ant, np.max), stat(pro, np.mean)
        out[i] = max(best - mean, 0.0)
    return out


class PairedTeacher(Teacher[BoxTaskSpace]):
    """PAIRED: an adversary builds each cycle's levels, trained on the student's regret against an antagonist.

    See the module docstring. Needs an on-policy student; the run trains the antagonist, a second student.

    :param adversary: steps (dcd's step-by-step builder, for an env with ``level_builder``: the maze), box (the
        whole task vector in one step), or auto (steps where the env builds levels, else box)
    :param flexible: dcd's flexible PAIRED (the better student plays the antagonist's role, per level)
    :param n_blocks: walls the step-by-step adversary places (dcd's n_clutter); 0: the env's own bound (the maze's
        max_walls, as dcd's 50-block maze has max 50)
    :param goal_last: the step-by-step adversary places the walls first, the goal and agent last (dcd's
        choose_goal_last)
    :param z_dim: dimension of the random vector z the adversary sees
    :param recurrent: the step-by-step adversary has an LSTM (dcd's maze configs)
    :param hidden: width of the step-by-step adversary's core (LSTM or linear)
    :param learning_rate: the adversary's Adam learning rate
    :param entropy_coef: the adversary's entropy bonus (minimax's maze config: 0.05)
    :param n_epochs: PPO epochs per update
    :param gamma: discount of the adversary's construction episode
    :param gae_lambda: GAE lambda of the adversary
    :param clip_range: PPO clip range (policy and value)
    :param max_grad_norm: gradient norm clip
    """

    supported_spaces = (BoxTaskSpace,)
    needs = "the student's and an antagonist's returns (regret)"
    #: the run trains a second student, the antagonist, on this teacher's levels (:mod:`students.loop.paired`)
    antagonist: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = (
        "batch", "level_index", "next_index", "protagonist", "antagonist_returns", "episodes", "rollout_kind",
        "n_envs", "cycles", "last_stats", "adversary_kind", "adversary_steps",
    )  # fmt: skip
    module_attrs: ClassVar[tuple[str, ...]] = ("adversary", "optimizer")

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        adversary: str = "auto",
        flexible: bool = False,
        n_blocks: int = 0,
        goal_last: bool = False,
        z_dim: int = 50,
        recurrent: bool = True,
        hidden: int = 256,
        learning_rate: float = 1e-4,
        entropy_coef: float = 0.05,
        n_epochs: int = 5,
        gamma: float = 0.995,
        gae_lambda: float = 0.98,
        clip_range: float = 0.2,
        max_grad_norm: float = 0.5,
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if adversary not in ADVERSARIES:
            raise ValueError(f"unknown adversary '{adversary}'; valid: {', '.join(ADVERSARIES)}")
        for name, value in (("z_dim", z_dim), ("hidden", hidden), ("n_epochs", n_epochs)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.requested, self.flexible, self.n_blocks, self.goal_last = adversary, bool(flexible), int(n_blocks), goal_last
        self.z_dim, self.recurrent, self.hidden = int(z_dim), bool(recurrent), int(hidden)
        self.learning_rate, self.entropy_coef, self.n_epochs = float(learning_rate), float(entropy_coef), int(n_epochs)
        self.gamma, self.gae_lambda, self.clip_range, self.max_grad_norm = gamma, gae_lambda, clip_range, max_grad_norm
        self.cycle = "rollout"
        self.rollout_kind = ""  # "new" once the first cycle has begun: every level is the adversary's
        self.builder: Any = None
        self.batch: list[Level] = []  # the cycle's levels, one per sub-environment
        self.level_index: dict[int, int] = {}  # level seed -> position in the batch
        self.next_index = 0
        self.protagonist: list[list[float]] = []  # completed-episode returns per level, this cycle
        self.antagonist_returns: list[list[float]] = []
        self.episodes: dict[str, np.ndarray] = {}  # the adversary's construction episodes of this cycle
        self.n_envs, self.cycles = 0, 0
        self.adversary_steps = 0  # the adversary's construction steps so far (one per level for the box adversary)
        self.last_stats: dict[str, float] = {}
        self._build_adversary("box")  # prepare() replaces it with the step-by-step one where the env builds levels

    # -- the adversary's networks ----------------------------------------------------------------------------
    def _build_adversary(self, kind: str) -> None:
        generator = _seeded(self.seed)
        self.adversary_kind = kind
        if kind == "steps":
            b = self.builder
            self.adversary: nn.Module = StepAdversary(b.size, b.n_actions, b.n_steps, self.z_dim, self.hidden, self.recurrent)
        else:
            self.adversary = BoxAdversary(self.z_dim, self.box_dim)
        _init(self.adversary, generator)
        self.optimizer = th.optim.Adam(self.adversary.parameters(), lr=self.learning_rate, eps=1e-5)

    def prepare(self, env: Any) -> None:
        """Take the env's level builder for the step-by-step adversary (``adversary`` steps or auto).

        :raises ValueError: ``adversary=steps`` on an env without ``level_builder``
        """
        make = getattr(getattr(env, "unwrapped", env), "level_builder", None)
        if self.requested == "steps" and make is None:
            raise ValueError(
                f"adversary=steps builds levels step by step, which {type(getattr(env, 'unwrapped', env)).__name__} "
                "cannot (it has no level_builder; the maze has): use adversary=box"
            )
        if make is not None and self.requested in ("steps", "auto"):
            self.builder = make(self.n_blocks or None, self.goal_last)
            self._build_adversary("steps")

    # -- the loop's cycle ------------------------------------------------------------------------------------
    def begin_rollout(self, n_envs: int) -> str:
        """The cycle starting now: update the adversary on the last cycle's regrets, then build ``n_envs`` levels
        (the next ``n_envs`` levels sampled)."""
        if self.batch:
            self._learn()
        self.n_envs = n_envs
        self.batch = self._build(n_envs)
        self.level_index = {int(level.seed): i for i, level in enumerate(self.batch)}  # type: ignore[arg-type]
        self.protagonist = [[] for _ in range(n_envs)]
        self.antagonist_returns = [[] for _ in range(n_envs)]
        self.next_index, self.rollout_kind = 0, "new"
        self.cycles += 1
        return "new"

    def continue_rollout(self) -> None:
        """A further rollout of the cycle in progress: its levels stay."""

    def sample_level(self) -> Level:
        """The cycle's levels in sub-environment order; before the first cycle (the loop primes every sub-environment
        before its first reset, and the first cycle resets them again), the centre of the box."""
        if not self.batch:
            return Level(self.task_space.clip((self.task_space.low + self.task_space.high) / 2))
        level = self.batch[self.next_index % len(self.batch)]
        self.next_index += 1
        return level

    def _sample(self) -> Task:
        return self.sample_level().task

    def _update(self, task: Task, feedback: Feedback) -> None:
        index = self.level_index.get(-1 if feedback.level_seed is None else int(feedback.level_seed))
        if index is not None and not feedback.cut:
            self.protagonist[index].append(feedback.episode_return)

    def record_antagonist(self, returns: list[list[float]]) -> None:
        """The antagonist's completed-episode returns per level of the cycle, from one of its rollouts.

        :raises ValueError: not one list per level of the cycle
        """
        if len(returns) != len(self.batch):
            raise ValueError(f"antagonist returns for {len(returns)} levels; the cycle has {len(self.batch)}")
        for mine, new in zip(self.antagonist_returns, returns, strict=True):
            mine.extend(float(r) for r in new)

    # -- building levels ---------------------------------------------------------------------------------------
    def _seed_batch(self, n: int) -> list[int]:
        seeds: list[int] = []
        while len(seeds) < n:
            seed = int(self.rng.integers(2**31 - 1))
            if seed not in seeds:
                seeds.append(seed)
        return seeds

    @th.no_grad()
    def _build(self, n: int) -> list[Level]:
        if self.adversary_kind == "box":
            z = self.rng.random((n, self.z_dim)).astype(np.float32)
            mean, value = self.adversary(th.as_tensor(z))
            std = cast(BoxAdversary, self.adversary).log_std.exp()
            action = mean.numpy() + std.numpy() * self.rng.standard_normal(mean.shape).astype(np.float32)
            dist = th.distributions.Normal(mean, std)
            log_prob = dist.log_prob(th.as_tensor(action)).sum(-1)
            self.adversary_steps += n
            self.episodes = {
                "z": z[None], "action": action[None], "log_prob": log_prob.numpy()[None], "value": value.numpy()[None]
            }
            return self._box_levels(np.clip(action, -1.0, 1.0), self._seed_batch(n))
        builders = [copy.deepcopy(self.builder) for _ in range(n)]
        for b in builders:
            b.start(int(self.rng.integers(4)))
        steps = builders[0].n_steps
        images = np.zeros((steps, n, 3, builders[0].size, builders[0].size), dtype=np.float32)
        times = np.zeros((steps, n), dtype=np.int64)
        zs = np.zeros((steps, n, self.z_dim), dtype=np.float32)
        actions = np.zeros((steps, n), dtype=np.int64)
        log_probs, values = np.zeros((steps, n), dtype=np.float32), np.zeros((steps, n), dtype=np.float32)
        memory = None
        for t in range(steps):
            images[t] = np.stack([b.image() for b in builders])
            times[t] = t
            zs[t] = self.rng.random((n, self.z_dim))
            logits, value, memory = self.adversary(
                th.as_tensor(images[t : t + 1]), th.as_tensor(times[t : t + 1]), th.as_tensor(zs[t : t + 1]), memory
            )
            probs = th.softmax(logits[0].double(), dim=-1).numpy()
            for i, b in enumerate(builders):
                p = probs[i] / probs[i].sum()
                actions[t, i] = int(self.rng.choice(len(p), p=p))
                log_probs[t, i] = float(np.log(max(p[actions[t, i]], 1e-300)))
                b.step(int(actions[t, i]), self.rng)
            values[t] = value[0].numpy()
        self.adversary_steps += steps * n
        self.episodes = {"image": images, "time": times, "z": zs, "action": actions, "log_prob": log_probs, "value": values}
        levels = [b.level() for b in builders]
        return [Level(level.task, seed, structure=level) for level, seed in zip(levels, self._seed_batch(n), strict=True)]

    @property
    def box_dim(self) -> int:
        """The dimension of the one-step adversary's action (the task space's)."""
        return self.task_space.dim

    def _box_levels(self, actions: np.ndarray, seeds: list[int]) -> list[Level]:
        """The levels of the one-step adversary's actions, in [-1, 1]: the box rescaled."""
        space = self.task_space
        tasks = space.low + (actions + 1.0) / 2.0 * (space.high - space.low)
        return [Level(space.clip(task), seed) for task, seed in zip(tasks, seeds, strict=True)]

    # -- learning ----------------------------------------------------------------------------------------------
    def _evaluate(self, episodes: dict[str, np.ndarray]) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Log-probabilities of the stored actions, entropies and values, ``(T, B)``, under the current network."""
        if self.adversary_kind == "box":
            mean, value = self.adversary(th.as_tensor(episodes["z"][0]))
            gaussian = th.distributions.Normal(mean, cast(BoxAdversary, self.adversary).log_std.exp())
            action = th.as_tensor(episodes["action"][0])
            return gaussian.log_prob(action).sum(-1)[None], gaussian.entropy().sum(-1)[None], value[None]
        logits, value, _ = self.adversary(
            th.as_tensor(episodes["image"]), th.as_tensor(episodes["time"]), th.as_tensor(episodes["z"])
        )
        dist = th.distributions.Categorical(logits=logits)
        return dist.log_prob(th.as_tensor(episodes["action"])), dist.entropy(), value

    def _learn(self) -> None:
        """One PPO update of the adversary on the cycle's construction episodes, the regret as the final reward."""
        regret = regrets(self.protagonist, self.antagonist_returns, self.flexible)
        episodes = self.episodes
        values = episodes["value"].astype(np.float64)
        steps = values.shape[0]
        rewards = np.zeros_like(values)
        rewards[-1] = regret
        advantages, running = np.zeros_like(values), np.zeros(values.shape[1])
        for t in range(steps - 1, -1, -1):  # GAE; the episode ends after its last placement
            following = values[t + 1] if t + 1 < steps else 0.0
            delta = rewards[t] + self.gamma * following - values[t]
            running = delta + self.gamma * self.gae_lambda * running * (t + 1 < steps)
            advantages[t] = running
        returns = th.as_tensor(advantages + values, dtype=th.float32)
        adv = th.as_tensor((advantages - advantages.mean()) / (advantages.std() + 1e-5), dtype=th.float32)
        old_log_prob, old_value = th.as_tensor(episodes["log_prob"]), th.as_tensor(episodes["value"])
        entropies, losses = [], []
        for _ in range(self.n_epochs):  # one minibatch: the whole cycle, dcd's num_mini_batch 1
            log_prob, entropy, value = self._evaluate(episodes)
            ratio = th.exp(log_prob - old_log_prob)
            clipped = th.clamp(ratio, 1 - self.clip_range, 1 + self.clip_range)
            policy_loss = -th.min(ratio * adv, clipped * adv).mean()
            value_clipped = old_value + (value - old_value).clamp(-self.clip_range, self.clip_range)
            value_loss = 0.5 * th.max((value - returns) ** 2, (value_clipped - returns) ** 2).mean()
            loss = policy_loss + 0.5 * value_loss - self.entropy_coef * entropy.mean()
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.adversary.parameters(), self.max_grad_norm)
            self.optimizer.step()
            entropies.append(float(entropy.mean().detach()))
            losses.append((float(policy_loss.detach()), float(value_loss.detach())))
        self.last_stats = {
            "paired/regret": float(regret.mean()),
            "paired/adversary_entropy": float(np.mean(entropies)),
            "paired/adversary_policy_loss": losses[-1][0],
            "paired/adversary_value_loss": losses[-1][1],
            "paired/adversary_return": float(regret.mean()),
            "paired/protagonist_return": float(np.mean([np.mean(r) if r else 0.0 for r in self.protagonist])),
            "paired/antagonist_return": float(np.mean([np.mean(r) if r else 0.0 for r in self.antagonist_returns])),
            **self._level_stats(),
        }

    def _level_stats(self) -> dict[str, float]:
        structures = [level.structure for level in self.batch if level.structure is not None]
        if not structures:
            tasks = np.array([level.task for level in self.batch])
            return {f"paired/task_{name}": float(tasks[:, d].mean()) for d, name in enumerate(self.task_space.names)}
        paths = [s.shortest_path() for s in structures]
        solved = [p for p in paths if p is not None]
        return {
            "paired/walls": float(np.mean([s.n_walls for s in structures])),
            "paired/shortest_path": float(np.mean(solved)) if solved else math.nan,
            "paired/solvable_share": len(solved) / len(paths),
        }

    def stats(self) -> dict[str, float]:
        return {k: v for k, v in self.last_stats.items() if math.isfinite(v)}
