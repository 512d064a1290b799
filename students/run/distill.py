"""Privileged-teacher distillation: an expert that reads the privileged observation teaches a student that reads
only its own sensors, by DAgger (Ross et al. 2011), while a curriculum teacher chooses the tasks.

The loop, one *round* at a time (``rollout_steps`` environment steps over ``n_envs`` environments):

1. every environment plays in ``observation_mode="privileged"``: the expert reads the whole dict, the student
   its ``student`` part (with its last ``history`` frames, :class:`environments.history.FrameHistory`, exactly
   as ``make_env(..., history=k)`` builds it for evaluation);
2. at each step the executed action is the expert's with probability ``beta`` (the round's value of the beta
   schedule), else the student's, sampled from its Gaussian (``rsl_rl`` lets the student act stochastically);
3. every visited state is labelled with the expert's deterministic action and added to a FIFO dataset of
   ``dataset_size`` transitions (float32 arrays);
4. the student is fitted (Adam, ``learning_rate``, minibatches of ``batch_size``): ``mse`` between its mean action
   and the label, or ``nll``, the negative log-likelihood of the label under its Gaussian (its std learns too).
   ``fit="round"`` (the default) takes ``epochs`` draws of ``rollout_steps`` rows, each without replacement from
   the whole aggregated dataset: the fit costs the same every round, as ``rsl_rl``'s (a pass over one round's
   worth of samples per epoch), and still learns from every round's states (DAgger's aggregation). ``fit="dataset"``
   makes ``epochs`` passes over the whole dataset (the version before this default; its cost grows with the
   dataset, up to ``dataset_size / rollout_steps`` times the round's; it reruns the earlier results to the bit);
5. each finished episode is reported to the curriculum teacher (return, success), which sets the task of the
   environment's next episode, as in ``run``.

The critic is warmed up in the same fits: the student's value head regresses each state's discounted return to
go (its PPO ``gamma``; an episode cut by the time limit is not bootstrapped), so that ``--finetune-steps``
starts PPO with a critic that already matches the distilled policy's returns.

Defaults: DAgger's linear beta schedule over 15 rounds (the ``imitation`` library's), MSE on the expert's
deterministic action, Adam 1e-3 and 2 epochs per round (``rsl_rl``'s ``Distillation``). ``rsl_rl``'s variant is
``beta=0, loss=mse, dataset_size=rollout_steps, epochs=1``: the student always acts and fits its latest rollout
(with that dataset, both ``fit`` modes are the same).

The student is an ordinary SB3 PPO model (``model.zip``) in an ordinary run folder (``config.yaml`` in the
:class:`~students.run.train.RunConfig` format with ``student: dagger``, ``eval.csv``, ``metrics.json``, ``tb/``), so
``eval``, ``render``, ``report`` and ``compare`` read it as any run. ``distill.yaml`` holds the distillation
settings. TensorBoard (``tb/distill``) has, per round at its step, ``distill/action_loss`` and ``value_loss`` (the
round's fit), ``beta``, ``expert_action_share`` (the actions executed that were the expert's), ``expert_gap``
(mean squared distance of the student's mean action from the expert's on the round's states, before the fit),
``dataset``, and ``eval/*`` at every evaluation (the steps of ``eval.csv``).
A checkpoint (every ``checkpoint_every`` steps, at round ends) holds the student and its optimiser, the dataset,
the teacher, every environment's state and history, the episodes in progress and the generators: a resume after
a crash continues exactly where the environment can capture its state (point-mass) and restarts the episodes in
progress otherwise (the walkers), as ``run`` does.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure as configure_logger
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv

from curriculum.base import Feedback, Teacher
from curriculum.registry import teacher_for
from curriculum.seeding import Streams
from environments.history import FrameHistory
from environments.registry import env_entry, make_env
from students.run import checkpoints
from students.loop.algorithms import resolve_hyperparams
from students.config import range_error, setting
from students.loop.evaluation import Evaluation, append_eval_rows, evaluate
from students.policies import PolicyFileError, load_policy, model_path
from students.run.lock import FolderLock
from students.run.train import ResolvedRun, RunConfig, settings_error
from students.run import layout

BETA_SCHEDULES = ("linear:ROUNDS", "exp:P", "a constant in [0, 1]")
LOSSES = ("mse", "nll")
FITS = ("round", "dataset")


class DistillError(ValueError):
    """A distillation that cannot start as asked (expert, spaces, schedule, settings)."""


@dataclass(frozen=True)
class BetaSchedule:
    """The probability of executing the expert's action in round ``r`` (from 0): ``linear:N`` is
    ``max(0, 1 - r / N)`` (imitation's ``LinearBetaSchedule``), ``exp:P`` is ``P ** r``, a number is constant."""

    kind: str
    value: float

    @classmethod
    def parse(cls, text: str | float) -> BetaSchedule:
        """:raises DistillError: anything but the forms above (the message lists them)"""
        kind, sep, value = str(text).partition(":")
        try:
            if not sep:
                number = float(kind)
                if 0.0 <= number <= 1.0:
                    return cls("constant", number)
            elif kind == "linear" and float(value) >= 1:
                return cls("linear", float(value))
            elif kind == "exp" and 0.0 <= float(value) <= 1.0:
                return cls("exp", float(value))
        except ValueError:
            pass
        raise DistillError(f"bad beta schedule '{text}'; valid: {', '.join(BETA_SCHEDULES)} (linear N >= 1, 0 <= P <= 1)")

    def __call__(self, round_index: int) -> float:
        if self.kind == "linear":
            return max(0.0, 1.0 - round_index / self.value)
        if self.kind == "exp":
            return self.value**round_index
        return self.value


class Dataset:
    """A FIFO of the last ``size`` labelled states: student observations, expert actions and (once the episode
    has ended) discounted returns to go, as float32 arrays."""

    def __init__(self, size: int, obs_dim: int, action_dim: int) -> None:
        self.size = size
        self.obs = np.zeros((size, obs_dim), np.float32)
        self.actions = np.zeros((size, action_dim), np.float32)
        self.returns = np.full(size, np.nan, np.float32)
        self.written = 0  # transitions ever added; slot = index % size

    def __len__(self) -> int:
        return min(self.written, self.size)

    def add(self, obs: np.ndarray, action: np.ndarray) -> int:
        """Store one labelled state; return its index (for :meth:`set_return`)."""
        slot = self.written % self.size
        self.obs[slot], self.actions[slot], self.returns[slot] = obs, action, np.nan
        self.written += 1
        return self.written - 1

    def set_return(self, index: int, value: float) -> None:
        """The return to go of the state added as ``index``, unless it has already left the FIFO."""
        if index >= self.written - self.size:
            self.returns[index % self.size] = value


@dataclass
class DistillConfig:
    """Everything that defines a distillation (saved as ``distill.yaml``; the keys of ``distill --config``)."""

    expert: str = setting("", "The expert: a run folder or model.zip (trained with --obs privileged).")
    env: str = setting("", "Environment [default: the expert's].")
    teacher: str = setting("random", "Teacher choosing the tasks of the collected episodes.")
    steps: int = setting(100_000, "Environment steps of distillation.")
    seed: int = setting(0, "The run's seed (every stream).")
    n_envs: int = setting(4, "Environments collecting in parallel.")
    rollout_steps: int = setting(2_000, "Environment steps per DAgger round (all environments together).")
    beta: str = setting("linear:15", "Expert-action probability per round: linear:ROUNDS, exp:P or a constant.")
    loss: str = setting("mse", "mse (mean action vs the expert's) or nll (log-likelihood of the expert's action).")
    history: int = setting(0, "Frames (observation + previous action) the student reads; 0: the current one.")
    dataset_size: int = setting(100_000, "Transitions kept (FIFO).")
    epochs: int = setting(2, "Passes per round: over a round's worth of dataset rows (fit=round) or all of it.")
    fit: str = setting("round", "round (rollout_steps rows per epoch, from the whole dataset) or dataset (all rows).")
    batch_size: int = setting(256, "Minibatch size.")
    learning_rate: float = setting(1e-3, "Adam's learning rate.")
    eval_every: int = setting(10_000, "Steps between test-set evaluations.")
    test_set: str = setting("default", "Test set to evaluate on.")
    checkpoint_every: int = setting(20_000, "Steps between checkpoints (at round ends).")
    device: str = setting("auto", "auto, cpu or cuda.")
    finetune_steps: int = setting(0, "PPO steps that then continue the distilled student (its critic warmed up).")
    teacher_params: dict[str, Any] = field(default_factory=dict)
    hp: dict[str, Any] = field(default_factory=dict)  # the PPO student's hyperparameters (policy_kwargs, gamma...)
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # default: the expert's, in plain observation mode

    def resolve(self) -> ResolvedDistill:
        """Check every setting, the expert against the environment's privileged view, the teacher and the student,
        and resolve them once (:class:`ResolvedDistill`). The config itself is left as given.

        :raises DistillError: the first problem, in one line (nothing is written)
        """
        integers = dict.fromkeys(("rollout_steps", "dataset_size", "epochs", "batch_size"), 1)
        integers.update(finetune_steps=0, history=0, seed=0)
        problem = settings_error(self) or range_error(self, integers)
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            problem = problem or f"learning_rate must be a number > 0, got {self.learning_rate!r}"
        if self.loss not in LOSSES:
            problem = problem or f"unknown loss '{self.loss}'; valid: {', '.join(LOSSES)}"
        if self.fit not in FITS:
            problem = problem or f"unknown fit '{self.fit}'; valid: {', '.join(FITS)}"
        if problem:
            raise DistillError(problem)
        BetaSchedule.parse(self.beta)
        if not self.expert:
            raise DistillError("no expert given (--expert RUN_DIR or model.zip)")
        try:
            expert_zip = model_path(Path(self.expert), "expert")
            policy = load_policy(expert_zip, role="expert")
        except PolicyFileError as exc:
            raise DistillError(str(exc)) from None
        folder = Path(self.expert) if Path(self.expert).is_dir() else expert_zip.parent
        run_config = folder / layout.CONFIG
        expert_run = yaml.safe_load(run_config.read_text()) if run_config.exists() else {}
        env_name = self.env or expert_run.get("env", "")
        if not env_name:
            raise DistillError(f"expert '{self.expert}' is not in a run folder: give its environment with --env")
        if not env_entry(env_name).trainable:
            raise DistillError(f"environment '{env_name}' cannot train an RL student (it is a teacher benchmark)")
        base = {k: v for k, v in expert_run.get("env_kwargs", {}).items() if k not in ("observation_mode", "history")}
        base = {**base, **self.env_kwargs}
        base.pop("observation_mode", None)
        history = int(base.pop("history", self.history))
        config = replace(self, env=env_name, history=history, env_kwargs={**base, **({"history": history} if history else {})})
        expert_reads = config._check_spaces(base, policy)
        hyperparams = resolve_hyperparams("ppo", env_name, self.hp)
        hyperparams.pop("policy", None)
        env = make_env(env_name, **base)
        try:
            test_tasks = env.test_set(self.test_set)
            teacher = teacher_for(self.teacher, env, Streams(self.seed).teacher, **self.teacher_params)
        finally:
            env.close()
        if teacher.required_scores:
            raise DistillError(
                f"teacher '{self.teacher}' needs the student's {', '.join(teacher.required_scores)} score, which "
                "distillation does not provide (it gives return and success); choose another teacher"
            )
        return ResolvedDistill(config, expert_zip, policy, expert_reads, hyperparams, test_tasks, teacher)

    def _check_spaces(self, base: dict[str, Any], policy: BasePolicy) -> str:
        """The expert must read the environment's privileged dict (or its plain view); the student's view must be
        the dict's ``student`` part with its history. Return what the expert reads: ``privileged`` or ``student``."""
        try:
            privileged = make_env(self.env, **base, observation_mode="privileged")
        except (TypeError, ValueError) as exc:
            raise DistillError(f"environment '{self.env}' has no privileged observation: {exc}") from None
        plain = make_env(self.env, **base)
        spaces = privileged.observation_space, plain.observation_space, privileged.action_space
        for env in (privileged, plain):
            env.close()
        if not isinstance(spaces[0], gym.spaces.Dict) or "student" not in spaces[0].spaces:
            raise DistillError(f"environment '{self.env}' gives no {{student, privileged}} dict in privileged mode")
        if policy.observation_space == spaces[0]:
            reads = "privileged"
        elif policy.observation_space == spaces[0]["student"]:
            reads = "student"
        else:
            raise DistillError(
                f"expert '{self.expert}' reads {policy.observation_space}; the environment's privileged view is "
                f"{spaces[0]} (check --env-kwarg: the expert must be trained on this view, e.g. with --obs privileged)"
            )
        if policy.action_space != spaces[2] or not isinstance(spaces[2], gym.spaces.Box):
            raise DistillError(f"expert acts in {policy.action_space}; the student needs the env's Box {spaces[2]}")
        if spaces[1] != spaces[0]["student"]:
            raise DistillError(f"the plain observation {spaces[1]} is not the privileged dict's student part")
        try:
            FrameHistory(spaces[1], spaces[2], self.history) if self.history else None
        except ValueError as exc:
            raise DistillError(str(exc)) from None
        return reads

    def settings(self) -> dict[str, Any]:
        """The settings as given (for ``distill.yaml``)."""
        names = [f for f in self.__dataclass_fields__]
        return {name: getattr(self, name) for name in names}


@dataclass
class ResolvedDistill:
    """A distillation checked and resolved once (:meth:`DistillConfig.resolve`), for one :func:`distill` call.

    ``config`` is what ``distill.yaml`` records (its environment, history and env keywords filled in from the
    expert's run); the rest is what checking it built: the expert's zip and frozen policy (on the CPU), what the
    expert reads (``privileged`` or ``student``), the student's PPO hyperparameters, the test set, and the teacher
    (it learns during the run, so a resolved distillation runs once).
    """

    config: DistillConfig
    expert_zip: Path
    policy: BasePolicy
    expert_reads: str
    hyperparams: dict[str, Any]
    test_tasks: np.ndarray
    teacher: Teacher
    used: bool = False  # set by distill(): the teacher has learned since

    def run_config(self) -> RunConfig:
        """The run folder's ``config.yaml``: a PPO student on the student's view, named ``dagger``."""
        config = self.config
        return RunConfig(
            env=config.env,
            teacher=config.teacher,
            student="dagger",
            algo="ppo",
            steps=config.steps,
            seed=config.seed,
            n_envs=config.n_envs,
            device=config.device,
            teacher_params=dict(config.teacher_params),
            hp_overrides={k: str(v) for k, v in config.hp.items()},
            env_kwargs=dict(config.env_kwargs),
            eval_every=config.eval_every,
            test_set=config.test_set,
            checkpoint_every=config.checkpoint_every,
            hyperparams={"policy": "MlpPolicy", **self.hyperparams},
        )


@dataclass
class _Episode:
    """One environment's episode in progress."""

    task: np.ndarray
    level_seed: int
    indices: list[int] = field(default_factory=list)  # dataset indices of its states
    rewards: list[float] = field(default_factory=list)


class Distiller:
    """The DAgger loop of one run (see the module docstring); :func:`distill` drives it."""

    def __init__(self, resolved: ResolvedDistill, out: Path) -> None:
        config = resolved.config
        self.config, self.out, self.test_tasks = config, out, resolved.test_tasks
        streams = Streams(config.seed)
        self.streams = streams
        self.device = get_device(config.device)
        base = {k: v for k, v in config.env_kwargs.items() if k != "history"}
        self.envs = [make_env(config.env, **base, observation_mode="privileged") for _ in range(config.n_envs)]
        self.expert, self.expert_reads = resolved.policy.to(self.device), resolved.expert_reads
        self.teacher: Teacher = resolved.teacher
        student_space = self.envs[0].observation_space["student"]
        self.histories = [
            FrameHistory(student_space, self.envs[0].action_space, config.history) if config.history else None
            for _ in self.envs
        ]
        with th.random.fork_rng(devices=[]):  # initial weights from the student's stream, global generators untouched
            th.manual_seed(streams.student)
            probe = DummyVecEnv([lambda: make_env(config.env, **config.env_kwargs)])
            self.model = PPO("MlpPolicy", probe, device=self.device, verbose=0, **resolved.hyperparams)
        self.policy = self.model.policy
        self.optimizer = th.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        obs_shape, action_shape = self.model.observation_space.shape, self.envs[0].action_space.shape
        assert obs_shape is not None and action_shape is not None  # flat Box spaces (FrameHistory checked them)
        self.dataset = Dataset(config.dataset_size, obs_shape[0], action_shape[0])
        self.rng = np.random.default_rng([streams.student, 1])  # action noise, beta mixing, minibatch order
        self.beta = BetaSchedule.parse(config.beta)
        self.gamma = float(resolved.hyperparams.get("gamma", 0.99))
        self.steps = self.rounds = self.episodes = self.expert_steps = 0
        self.last_eval: tuple[int, Evaluation] | None = None
        self.losses: dict[str, float] = {}
        self.round_log: dict[str, float] = {}  # the last round's beta, expert share and student-expert gap
        self.logger = configure_logger(str(out / layout.TB / "distill"), ["tensorboard"])
        self.episodes_now: list[_Episode] = []
        self.student_obs: list[np.ndarray] = []
        self.raw_obs: list[Any] = []

    # -- environments -----------------------------------------------------------------------------------------
    def _begin(self, i: int, seed: int | None = None) -> None:
        """Start environment ``i``'s next episode on the level the teacher chooses."""
        level = self.teacher.sample_level()
        self.envs[i].set_next_level(level.task, level.seed, level.structure)
        self._reset(i, seed)

    def _reset(self, i: int, seed: int | None) -> None:
        obs, _ = self.envs[i].reset(seed=seed)
        env = self.envs[i]
        episode = _Episode(np.array(env.task, dtype=np.float64), int(env.level_seed))
        history = self.histories[i]
        view = obs["student"] if history is None else history.reset(obs["student"])
        if len(self.episodes_now) == i:  # the first episode
            self.episodes_now.append(episode)
            self.student_obs.append(view)
            self.raw_obs.append(obs)
        self.episodes_now[i], self.student_obs[i], self.raw_obs[i] = episode, view, obs

    def start(self) -> None:
        for i in range(len(self.envs)):
            self._begin(i, seed=self.streams.env(i))

    # -- one round ----------------------------------------------------------------------------------------------
    def _expert_actions(self) -> np.ndarray:
        if self.expert_reads == "privileged":
            obs: Any = {key: np.stack([o[key] for o in self.raw_obs]) for key in self.raw_obs[0]}
        else:
            obs = np.stack([o["student"] for o in self.raw_obs])
        return self.expert.predict(obs, deterministic=True)[0]

    def _student_actions(self) -> np.ndarray:
        with th.no_grad():
            obs = th.as_tensor(np.stack(self.student_obs), device=self.device)
            dist = cast(th.distributions.Normal, self.policy.get_distribution(obs).distribution)  # a Gaussian student
            mean, std = dist.mean.cpu().numpy(), dist.stddev.cpu().numpy()
        self._student_mean = mean
        return mean + std * self.rng.standard_normal(mean.shape)

    def collect(self) -> None:
        """Play one round, adding every visited state with the expert's label to the dataset."""
        beta = self.beta(self.rounds)
        low, high = self.envs[0].action_space.low, self.envs[0].action_space.high
        gap, expert, steps = 0.0, 0, 0
        for _ in range(math.ceil(self.config.rollout_steps / len(self.envs))):
            labels = self._expert_actions()
            student = self._student_actions()
            use_expert = self.rng.random(len(self.envs)) < beta
            self.expert_steps += int(use_expert.sum())
            gap += float(np.sum((self._student_mean - labels) ** 2))
            expert, steps = expert + int(use_expert.sum()), steps + len(self.envs)
            for i, env in enumerate(self.envs):
                episode = self.episodes_now[i]
                episode.indices.append(self.dataset.add(self.student_obs[i], labels[i]))
                action = np.clip(labels[i] if use_expert[i] else student[i], low, high)
                obs, reward, terminated, truncated, info = env.step(action)
                episode.rewards.append(float(reward))
                self.raw_obs[i] = obs
                history = self.histories[i]
                self.student_obs[i] = obs["student"] if history is None else history.push(obs["student"], action)
                if terminated or truncated:
                    self._finish(i, info)
            self.steps += len(self.envs)
        self.rounds += 1
        # the student's mean action against the expert's label on the states it visited, before this round's fit
        self.round_log = {"beta": beta, "expert_action_share": expert / steps, "expert_gap": gap / steps}

    def log_round(self) -> None:
        """TensorBoard ``distill/*`` of the last round (losses of its fit, beta, expert share and gap) at its step."""
        for key, value in {**self.round_log, **{f"{k}_loss": v for k, v in self.losses.items()}}.items():
            self.logger.record(f"distill/{key}", value)
        self.logger.record("distill/dataset", len(self.dataset))
        self.logger.dump(self.steps)

    def _finish(self, i: int, info: dict[str, Any]) -> None:
        episode, env = self.episodes_now[i], self.envs[i]
        total, to_go = float(sum(episode.rewards)), 0.0
        for index, reward in zip(reversed(episode.indices), reversed(episode.rewards), strict=True):
            to_go = reward + self.gamma * to_go
            self.dataset.set_return(index, to_go)
        feedback = Feedback(
            episode_return=total,
            success=bool(env.is_success(total, info)),
            length=len(episode.rewards),
            level_seed=episode.level_seed,
            level=info.get("level"),
        )
        self.teacher.update(episode.task, feedback)
        self.episodes += 1
        self._begin(i)

    def _pass_rows(self) -> np.ndarray:
        """The dataset rows of one pass: all of them (``fit=dataset``, or while the dataset holds one round), else
        ``rollout_steps`` rows drawn without replacement; in a random order."""
        n, rows = len(self.dataset), self.config.rollout_steps
        if self.config.fit == "dataset" or n <= rows:
            return self.rng.permutation(n)
        return self.rng.choice(n, size=rows, replace=False)

    def fit(self) -> dict[str, float]:
        """``epochs`` passes of minibatch Adam (rows as :meth:`_pass_rows`); return the last pass's mean losses."""
        batch = self.config.batch_size
        sums = {"action": 0.0, "value": 0.0}
        n = 0
        self.policy.set_training_mode(True)
        for _ in range(self.config.epochs):
            order = self._pass_rows()
            n = len(order)
            sums = {"action": 0.0, "value": 0.0}
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                obs = th.as_tensor(self.dataset.obs[rows], device=self.device)
                labels = th.as_tensor(self.dataset.actions[rows], device=self.device)
                returns = th.as_tensor(self.dataset.returns[rows], device=self.device)
                dist = self.policy.get_distribution(obs)
                if self.config.loss == "mse":
                    mean = cast(th.distributions.Normal, dist.distribution).mean
                    action_loss = ((mean - labels) ** 2).sum(dim=1).mean()
                else:
                    action_loss = -dist.log_prob(labels).mean()
                known = ~th.isnan(returns)
                value_loss = th.zeros((), device=self.device)
                if known.any():
                    values = self.policy.predict_values(obs[known]).flatten()
                    value_loss = ((values - returns[known]) ** 2).mean()
                self.optimizer.zero_grad()
                (action_loss + value_loss).backward()
                self.optimizer.step()
                sums["action"] += action_loss.item() * len(rows)
                sums["value"] += value_loss.item() * len(rows)
        self.policy.set_training_mode(False)
        self.losses = {key: value / max(n, 1) for key, value in sums.items()}
        return self.losses

    # -- evaluation and state -----------------------------------------------------------------------------------
    def evaluate(self) -> Evaluation:
        """The deterministic student on the test set (the run's evaluation stream), appended to ``eval.csv``."""
        config = self.config

        def act(obs: np.ndarray) -> np.ndarray:
            return self.model.predict(obs, deterministic=True)[0]

        evaluation = evaluate(act, config.env, self.test_tasks, self.streams.evaluation, config.env_kwargs)
        append_eval_rows(self.out / layout.EVAL, self.steps, evaluation, self.steps)  # it learns from every step
        self.last_eval = (self.steps, evaluation)
        self.logger.record("eval/mastered_pct", evaluation.mastered_pct)
        self.logger.record("eval/mean_return", evaluation.mean_return)
        self.logger.dump(self.steps)
        return evaluation

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "dataset": self.dataset,
            "teacher": self.teacher.state_dict(),
            "envs": [env.get_state() if env.supports_state else None for env in self.envs],
            "histories": [None if h is None else h.frames.copy() for h in self.histories],
            "episodes": self.episodes_now,
            "student_obs": self.student_obs,
            "raw_obs": self.raw_obs,
            "rng": self.rng.bit_generator.state,
            "counters": (self.steps, self.rounds, self.episodes, self.expert_steps),
            "last_eval": self.last_eval,
            "losses": self.losses,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.dataset = state["dataset"]
        self.teacher.load_state_dict(state["teacher"])
        self.episodes_now, self.student_obs, self.raw_obs = state["episodes"], state["student_obs"], state["raw_obs"]
        self.rng.bit_generator.state = state["rng"]
        self.steps, self.rounds, self.episodes, self.expert_steps = state["counters"]
        self.last_eval, self.losses = state["last_eval"], state["losses"]
        for i, (env, env_state) in enumerate(zip(self.envs, state["envs"], strict=True)):
            history = self.histories[i]
            if history is not None and state["histories"][i] is not None:
                history.frames[:] = state["histories"][i]
            if env_state is not None:
                env.set_state(env_state)
            else:  # an env that cannot capture its state restarts the level it was playing
                env.set_task(self.episodes_now[i].task, self.episodes_now[i].level_seed)
                self._reset(i, seed=self.streams.env_restart(i, self.steps))

    def save_checkpoint(self) -> None:
        """Written whole into a side folder, then swapped in: a crash leaves the previous checkpoint or this one
        (:mod:`students.run.checkpoints`, as a run's)."""
        staging = checkpoints.stage(self.out)
        self.model.save(staging / layout.MODEL)
        with (staging / layout.STATE).open("wb") as handle:
            pickle.dump(self.state_dict(), handle)
        checkpoints.write_json(staging / layout.PROGRESS, {"timesteps": self.steps, "rounds": self.rounds})  # last: complete
        checkpoints.swap_in(self.out)

    def close(self) -> None:
        for env in self.envs:
            env.close()
        probe = self.model.get_env()
        if probe is not None:
            probe.close()
        self.logger.close()


def _crossed(before: int, after: int, every: int) -> bool:
    """Whether the step counter passed a multiple of ``every`` between two values."""
    return after // every > before // every


def distill(
    run: DistillConfig | ResolvedDistill,
    out: Path,
    resume: bool = False,
    progress: Callable[[int, int, float | None], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Distil (or resume distilling) ``config.expert`` into a student in the run folder ``out``; return its metrics.

    A distillation that died before its first checkpoint restarts from step 0 (saying so through ``notify``),
    with ``resume`` or without.

    The first Ctrl-C (or SIGTERM) stops at the end of the round with a checkpoint and raises ``KeyboardInterrupt``.

    :param run: the settings, or the same already resolved (:meth:`DistillConfig.resolve`, once per run)
    :param progress: called with (steps, episodes, last mastered %) after every round
    :raises DistillError: bad settings, a folder with another run, a resume without a checkpoint; a resolved
        distillation run before
    """
    resolved = run if isinstance(run, ResolvedDistill) else run.resolve()
    if resolved.used:
        raise DistillError("this resolved distillation has run already (its teacher learned): resolve its config again")
    config, out, say = resolved.config, Path(out), notify or (lambda _message: None)
    _check_folder(config, out, resume)
    saved = out / layout.DISTILL
    with FolderLock(out):
        resume = resume and checkpoints.recover(out)
        if not resume and (saved.exists() or (out / layout.CONFIG).exists()):  # died before its first checkpoint
            say(f"'{out}' has no checkpoint (the distillation stopped before its first one): restarting it from step 0")
            checkpoints.remove_outputs(out, also=(layout.DISTILL,))
        resolved.used = True
        distiller = Distiller(resolved, out)
        try:
            if resume:
                _resume(distiller, out)
            else:
                saved.write_text(yaml.safe_dump(_plain(config.settings()), sort_keys=False))
                (out / layout.CONFIG).write_text(yaml.safe_dump(_plain(asdict(resolved.run_config())), sort_keys=False))
                distiller.start()
            _rounds(distiller, progress)
            if distiller.last_eval is None or distiller.last_eval[0] != distiller.steps:
                distiller.evaluate()
            distiller.save_checkpoint()
            assert distiller.last_eval is not None
            final = distiller.last_eval[1]
        finally:
            distiller.close()
    metrics = _metrics(distiller, final)
    checkpoints.write_outputs(out, distiller.model, distiller.teacher.state_dict(), metrics)
    return metrics


def _check_folder(config: DistillConfig, out: Path, resume: bool) -> None:
    """Refuse, before anything is written, a folder that holds another run, or a resume it cannot serve."""
    saved = out / layout.DISTILL
    if not resume and checkpoints.has_progress(out):
        raise DistillError(f"'{out}' already holds a run; continue it with --resume or choose another --out")
    if resume and not (saved.exists() or (out / layout.CONFIG).exists()):
        raise DistillError(f"--resume: '{out}' holds no distillation to resume")
    if resume and saved.exists():
        kept, asked = _saved_settings(saved), _plain(config.settings())
        if kept != asked:
            differ = "; ".join(
                f"{key}: {kept.get(key, '-')} there, {asked.get(key, '-')} asked"
                for key in sorted(set(kept) | set(asked), key=str) if kept.get(key) != asked.get(key)
            )
            raise DistillError(f"'{out}' holds a distillation with other settings ({differ})")
    if resume and not checkpoints.saved_checkpoint(out) and (out / layout.CHECKPOINT).exists():
        raise DistillError(checkpoints.resume_problem(out) or f"'{out}/checkpoint' cannot be resumed")


def _saved_settings(path: Path) -> dict[str, Any]:
    """A folder's ``distill.yaml``; one written before the ``fit`` setting existed fitted every row of its dataset
    each pass, so it reads as ``fit: dataset``."""
    saved = yaml.safe_load(path.read_text()) or {}
    saved.setdefault("fit", "dataset")
    return saved


def _resume(distiller: Distiller, out: Path) -> None:
    """The checkpoint's state, and the evaluation rows past it dropped."""
    try:
        state = checkpoints.load_pickle(out / layout.CHECKPOINT / layout.STATE)
    except Exception as exc:  # truncated, empty or garbage
        raise DistillError(checkpoints.damaged(out / layout.CHECKPOINT / layout.STATE, exc)) from None
    distiller.load_state_dict(state)
    checkpoints.truncate_rows_after(out / layout.EVAL, distiller.steps)


def _rounds(distiller: Distiller, progress: Callable[[int, int, float | None], None] | None) -> None:
    """Rounds up to the budget, with evaluations and checkpoints when the step counter passes their periods; a
    stop request ends them with a checkpoint and ``KeyboardInterrupt``."""
    config = distiller.config
    with checkpoints.StopRequest() as stop:
        while distiller.steps < config.steps:
            before = distiller.steps
            distiller.collect()
            distiller.fit()
            distiller.log_round()
            if _crossed(before, distiller.steps, config.eval_every):
                distiller.evaluate()
            if progress is not None:
                shown = None if distiller.last_eval is None else distiller.last_eval[1].mastered_pct
                progress(distiller.steps, distiller.episodes, shown)
            if _crossed(before, distiller.steps, config.checkpoint_every) or stop.requested:
                distiller.save_checkpoint()
            if stop.requested:
                raise KeyboardInterrupt


def _metrics(distiller: Distiller, final: Evaluation) -> dict[str, Any]:
    """The distillation's ``metrics.json``."""
    return {
        "timesteps": distiller.steps,
        "episodes_reported": distiller.episodes,
        "final_eval": {"mastered_pct": final.mastered_pct, "mean_return": final.mean_return, "tasks": len(final.results)},
        "teacher_updates": distiller.teacher.n_updates,
        "teacher_stats": distiller.teacher.stats(),
        "distill": {
            "rounds": distiller.rounds,
            "expert_action_share": distiller.expert_steps / max(distiller.steps, 1),
            "dataset": len(distiller.dataset),
            "action_loss": distiller.losses.get("action"),
            "value_loss": distiller.losses.get("value"),
        },
    }


def load_distill_config(path: Path | None, options: dict[str, Any]) -> ResolvedDistill:
    """A distillation's settings from a YAML file and options (not ``None``), resolved (see
    :meth:`DistillConfig.resolve`); ``teacher_params`` may be given as strings, parsed against the teacher."""
    from curriculum.registry import parse_teacher_params
    from students.config import load_settings

    config = DistillConfig(**load_settings(path, options, DistillConfig.__dataclass_fields__))
    raw = {k: v for k, v in config.teacher_params.items() if isinstance(v, str)}
    typed = {k: v for k, v in config.teacher_params.items() if not isinstance(v, str)}
    config.teacher_params = {**typed, **parse_teacher_params(raw, config.teacher)}
    return config.resolve()


def finetune_plan(resolved: ResolvedDistill, folder: Path, in_layout: bool, resume: bool) -> tuple[ResolvedRun, Path]:
    """The PPO run that continues the student distilled into ``folder`` for ``finetune_steps`` steps (same view,
    teacher, seed and test set; its critic was warmed up during distillation), named ``dagger-ft``: beside the
    ``dagger`` student when ``folder`` follows the experiment layout (``.../<student>/seed<k>``), else in
    ``<folder>-ft``.

    :raises RunError: the fine-tuning folder holds another run
    """
    from students.run.train import check_run_dir

    asked = replace(resolved.run_config(), student="dagger-ft", steps=resolved.config.finetune_steps, hyperparams={})
    tuned = replace(asked, init_model=str(Path(folder) / layout.MODEL)).resolve()
    tuned_folder = folder.parent.parent / "dagger-ft" / folder.name if in_layout else folder.with_name(f"{folder.name}-ft")
    check_run_dir(tuned.config, tuned_folder, resume and (tuned_folder / layout.CHECKPOINT).exists())
    return tuned, tuned_folder


def _plain(value: Any) -> Any:
    """Settings as YAML writes and reads them back (tuples as lists)."""
    return yaml.safe_load(yaml.safe_dump(value, sort_keys=False))
