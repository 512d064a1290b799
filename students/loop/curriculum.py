"""The teacher <-> student loop: a teacher chooses every sub-environment's next task and learns from each episode.

SB3 vector envs reset a finished sub-environment inside ``step()``, so a task chosen after an episode ends can
only apply to the episode after the one that already started. Each sub-environment therefore holds one
*pending* task (one episode of look-ahead): :meth:`CurriculumCallback.prime` gives every sub-environment its
first task before ``learn()`` resets them and queues the next one; each time an episode ends, a new task is
queued for that sub-environment. Every episode is reported to the teacher exactly once, attributed to the task
its final ``info`` says it played, in a fixed order (rollout step, then sub-environment index).

Chunked training works: when a later ``learn()`` resets the envs, :meth:`CurriculumCallback._on_training_start`
sees which sub-environments consumed their pending level and queues new ones. :meth:`CurriculumCallback.state_dict`
holds everything the loop's future depends on, for an exact resume.

A teacher may also choose each level's seed and ask for an episode to be played without the student learning
from it (``Level.train``, Robust PLR): the callback sets the flag of each sub-environment's current episode on
the student's buffer (``step_mask``, see :mod:`students.loop.masked`) before each step is stored.

Updates are applied when a rollout ends, after SB3 has computed values and advantages, so that each episode's
feedback can carry value-based scores from the student (:data:`curriculum.base.STUDENT_SCORES`):

- ``positive_value_loss``: mean over the episode's steps of max(GAE advantage, 0);
- ``value_l1``: mean |advantage|;
- ``mean_value``: mean value estimate over the episode's states (MaxMC subtracts it from the level's best return);
- ``initial_value``: the value estimate of the episode's first state;
- ``discounted_return``: the episode's return discounted with the student's gamma (SPDL's average performance),
  from the rewards the environment gave (before SB3 bootstraps a truncated episode's last reward).

On-policy students (PPO, A2C) take values and advantages from the rollout buffer; an episode split across
rollouts is merged (its per-step sums are carried over, weighted by step count). Off-policy students (SAC, TD3,
TQC) have no rollout values: the episode's states are kept while it runs, and at its end V(s) = Q(s, pi(s))
(deterministic action; the smaller of the twin critics, or the mean of TQC's quantiles) gives GAE advantages
(lambda = 0.95, the student's gamma; the final state bootstraps unless the episode terminated). Episodes that
cannot be scored (cut by an interrupted rollout) are not reported to a teacher that needs scores.

A teacher with dcd's rollout cycle (``cycle == "rollout"``, :mod:`curriculum.plr`) is asked at a rollout's start
what the cycle starting there plays (:meth:`~curriculum.plr.PlrTeacher.begin_rollout`); every sub-environment is
then reset to a level of that kind. The episodes still running are cut there and reported as they stand (their
scores from the steps they took, the last value bootstrapped; not solved), to the teacher only, not to the
episode logs (``episodes_cut`` counts them). In a new-level or edit cycle an episode that ends is followed by its
own level again, as dcd's agent resets. A cycle lasts until every sub-environment has ended an episode: with
rollouts at least an episode long (dcd's layout, and teachrl's PPO defaults) that is one rollout, as dcd's; with
shorter ones (A2C's 8 steps) the cycle spans the rollouts it takes (:meth:`~curriculum.plr.PlrTeacher.
continue_rollout` counts them), instead of cutting every episode after 8 steps. The one episode of look-ahead
stays: a replay sample drawn for an episode the cycle's end cuts is not played.

PAIRED and CLUTR (``teacher.antagonist``) run the same cycle with every level the adversary's: the run gives the
callback an antagonist (:class:`students.loop.paired.Antagonist`), which after each of the student's rollouts (at
its end, before the student's update) plays a rollout on the cycle's levels and reports its completed episodes to
the teacher (``record_antagonist``); the cut episodes reach the teacher marked ``cut``, which regret leaves out.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from curriculum.base import (
    DISCOUNTED_RETURN,
    INITIAL_VALUE,
    MEAN_VALUE,
    POSITIVE_VALUE_LOSS,
    STUDENT_SCORES,
    VALUE_L1,
    Feedback,
    Level,
    Teacher,
)
from students.loop.algorithms import ON_POLICY, algorithm_of, discount_factor, restart_episodes
from students.loop.curriculum_log import CurriculumStats
from students.loop.masked import MASKED_ALGORITHMS, StepMasked
from students.loop.vec_env import stack_observations

OFF_POLICY_GAE_LAMBDA = 0.95


def student_problem(teacher: Teacher, model: Any, antagonist: bool = False) -> str | None:
    """Why ``model`` cannot be ``teacher``'s student, in one line with the fix, or ``None``.

    - a teacher that trains the student only on some episodes (``masks_updates``: Robust PLR, ACCEL, SFL) needs a
      student whose buffer takes a step mask (:mod:`students.loop.masked`);
    - a teacher that learns from value scores (``required_scores``: PLR, Robust PLR, ACCEL) needs a student the
      loop can score (:attr:`students.loop.algorithms.Algorithm.scores`);
    - dcd's rollout cycle needs an on-policy student;
    - PAIRED's and CLUTR's regret needs an antagonist, which only a whole run builds (``antagonist``: it has one).
    """
    algorithm = algorithm_of(model)  # raises for a class the loop does not know
    name = type(model).__name__
    if getattr(teacher, "antagonist", False) and not antagonist:
        return (
            f"teacher {type(teacher).__name__} measures regret against a second student (the antagonist), which "
            "students.train builds: run it with students.train(RunConfig(teacher=..., ...)) or cli.py run"
        )
    buffer = getattr(model, "rollout_buffer", None) or getattr(model, "replay_buffer", None)
    if teacher.masks_updates and not isinstance(buffer, StepMasked):
        variant = next((cls for cls in MASKED_ALGORITHMS.values() if issubclass(cls, algorithm.cls)), None)
        fix = f"students.loop.masked.{variant.__name__}" if variant else "one of students.loop.masked.MASKED_ALGORITHMS"
        return (
            f"teacher {type(teacher).__name__} trains the student only on some episodes, which a "
            f"{name} student cannot (it would learn from every episode): use {fix}, the same algorithm with a step mask"
        )
    missing = [score for score in teacher.required_scores if score in STUDENT_SCORES and score != DISCOUNTED_RETURN]
    if missing and not algorithm.scores:
        scores = ", ".join(missing)
        return f"teacher {type(teacher).__name__} learns from the student's {scores}, which a {name} student cannot give"
    if getattr(teacher, "cycle", "episode") == "rollout" and not algorithm.on_policy:
        return cycle_problem(teacher, name)
    return None


def cycle_problem(teacher: Teacher, student: str) -> str:
    """Why ``student`` (not on-policy) cannot learn under ``teacher``'s dcd cycle, with the fix."""
    return (
        f"teacher {type(teacher).__name__} runs dcd's cycle (cycle=rollout, its default), which needs an on-policy "
        f"student ({', '.join(ON_POLICY)}), not {student}: give it cycle=episode (--teacher-param cycle=episode)"
    )


@dataclass
class _Partial:
    """Sums over the steps an unfinished episode has spent in earlier rollouts."""

    positive_advantage: float = 0.0
    absolute_advantage: float = 0.0
    value: float = 0.0
    steps: int = 0
    initial_value: float | None = None

    def add(self, advantages: np.ndarray, values: np.ndarray) -> None:
        if self.initial_value is None:
            self.initial_value = float(values[0])
        self.positive_advantage += float(np.maximum(advantages, 0).sum())
        self.absolute_advantage += float(np.abs(advantages).sum())
        self.value += float(values.sum())
        self.steps += len(advantages)

    def scores(self) -> dict[str, float]:
        return {
            POSITIVE_VALUE_LOSS: self.positive_advantage / self.steps,
            VALUE_L1: self.absolute_advantage / self.steps,
            MEAN_VALUE: self.value / self.steps,
            INITIAL_VALUE: float(self.initial_value),  # type: ignore[arg-type]
        }


@dataclass
class _Finished:
    step: int  # position in the current rollout buffer (on-policy) or a running counter
    env_index: int
    outcome: dict[str, Any]
    scores: dict[str, float] | None = None  # computed at the episode's end (off-policy students)
    discounted_return: float = 0.0


def gae(rewards: np.ndarray, values: np.ndarray, last_value: float, gamma: float, lam: float) -> np.ndarray:
    """GAE advantages of one episode: ``values`` of its states, ``last_value`` of the state after its last step
    (0 when the episode terminated)."""
    following = np.append(values[1:], last_value)
    deltas = rewards + gamma * following - values
    advantages = np.empty_like(deltas)
    running = 0.0
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + gamma * lam * running
        advantages[t] = running
    return advantages


class CurriculumCallback(BaseCallback):
    """Drive a vector env's tasks with a teacher (see the module docstring).

    :param teacher: the teacher; its task space must be the environment's
    :param log_window: episodes kept for the ``curriculum/*`` logs
    """

    def __init__(
        self,
        teacher: Teacher,
        log_window: int = 500,
        image_every: int = 1000,
        verbose: int = 0,
        feasible: Callable[[np.ndarray], np.ndarray] | None = None,
        env: VecEnv | None = None,
        student: BaseAlgorithm | None = None,
    ) -> None:
        """``feasible``: the env's rule of which tasks can be solved (rows of tasks -> bools), to count the
        episodes on the others and their steps (``stats.infeasible``, ``stats.infeasible_steps``); ``None``: not
        counted.

        ``env``: the student's vector env, primed here (:meth:`prime`: every sub-environment's first task);
        ``student``: the model, checked here (:func:`student_problem`) rather than when ``learn()`` starts.

        :raises ValueError: a teacher not prepared for its env, or a student that cannot serve the teacher
        """
        super().__init__(verbose)
        self.teacher = teacher
        self.feasible = feasible
        self.image_every = image_every
        self.stats = CurriculumStats(log_window)
        self._finished: list[_Finished] = []
        self._partials: dict[int, _Partial] = {}
        self._current: list[Level] = []  # the level each sub-environment is playing
        self._pending: list[Level] = []  # the level its next reset builds
        self._trajectories: dict[int, tuple[list[Any], list[float]]] = {}  # off-policy: states, rewards so far
        self.trained_steps = 0  # transitions the student stored to learn from (Level.train), for budgets
        self._unstored = 0  # trainable transitions of the step in progress: stored after on_step, unless it stops
        self._discounted = np.zeros(0)  # per sub-environment: discounted return of the episode so far
        self._discount = np.zeros(0)  # and gamma^t, t its steps so far
        self._returns = np.zeros(0)  # its undiscounted return and steps so far (dcd's cycle reports cut episodes)
        self._lengths = np.zeros(0, dtype=np.int64)
        self._ended = np.ones(0, dtype=bool)  # dcd's cycle: each sub-environment has ended an episode in this cycle
        self.episodes_cut = 0  # episodes the cycle's start cut and reported to the teacher only
        self.cycle = getattr(teacher, "cycle", "episode") == "rollout"
        #: whether :meth:`_on_rollout_start` runs dcd's cycle itself (a run sets it off and calls
        #: :meth:`start_rollout` after its checkpoint, so that a checkpoint holds the state before the decision)
        self.cycle_on_rollout_start = True
        #: PAIRED's second student (:class:`students.loop.paired.Antagonist`), for a teacher that asks for one
        #: (``teacher.antagonist``): it plays the cycle's levels after each rollout, before the student's update
        self.antagonist: Any = None
        self._cycle_levels: list[Level] = []  # the levels the cycle in progress started with
        self._cycle_fresh = False  # whether the antagonist has yet to play the cycle in progress
        if student is not None:
            problem = student_problem(teacher, student)
            if problem:
                raise ValueError(problem)
        if env is not None:
            self.prime(env)

    def _init_callback(self) -> None:
        """Refuse a student that cannot do what the teacher asks of it (:func:`student_problem`)."""
        problem = student_problem(self.teacher, self.model, antagonist=self.antagonist is not None)
        if problem:
            raise ValueError(problem)
        self.algorithm = algorithm_of(self.model)  # what the student is: on- or off-policy, where its values come from
        self.gamma = discount_factor(self.model)  # read once per learn(), not at every step

    # -- priming ---------------------------------------------------------------------------------------------
    def prime(self, env: VecEnv) -> None:
        """Give every sub-environment its first task, to be built by the reset ``learn()`` starts with.

        The pending tasks for the episodes after those are queued in :meth:`_on_training_start`.

        :raises ValueError: a teacher that reads its environment (ADR, SPDL, ACCEL...) and was not prepared for it
        """
        if self.teacher.reads_env and not self.teacher.prepared:
            raise ValueError(
                f"teacher {type(self.teacher).__name__} reads its environment before its first sample (its easy region, "
                "its task distributions): make it with curriculum.teacher_for(name, env), or call "
                "teacher.prepare(env)"
            )
        self._current = [self._send(env, i) for i in range(env.num_envs)]
        self._discounted, self._discount = np.zeros(env.num_envs), np.ones(env.num_envs)
        self._returns, self._lengths = np.zeros(env.num_envs), np.zeros(env.num_envs, dtype=np.int64)
        self._ended = np.ones(env.num_envs, dtype=bool)  # the first rollout starts a cycle

    def _send(self, env: VecEnv, env_index: int, level: Level | None = None) -> Level:
        level = level if level is not None else self.teacher.sample_level()
        env.env_method("set_next_level", level.task, level.seed, level.structure, indices=[env_index])
        return level

    def _next_level(self, env_index: int) -> Level:
        """The level sub-environment ``env_index`` plays after the episode it just started: the teacher's choice,
        or, in a new-level or edit rollout of dcd's cycle, that episode's level again."""
        again = self.cycle and self.teacher.rollout_kind in ("new", "edit")  # type: ignore[attr-defined]
        return self._send(self.training_env, env_index, self._current[env_index] if again else None)

    def _on_rollout_start(self) -> None:
        if self.cycle and self.cycle_on_rollout_start:
            self.start_rollout()

    def start_rollout(self) -> None:
        """dcd's cycle: once every sub-environment has ended an episode since the cycle began, report the episodes
        still running as cut, decide the next cycle's kind, and reset every sub-environment to a level of that kind;
        before, continue the cycle."""
        env = self.training_env
        if not self._ended.all():
            self.teacher.continue_rollout()  # type: ignore[attr-defined]
            return
        self._ended[:] = False
        for i in range(env.num_envs):
            if self._lengths[i] > 0:
                self._report_cut(i)
        self.teacher.begin_rollout(env.num_envs)  # type: ignore[attr-defined]
        self._current = [self._send(env, i) for i in range(env.num_envs)]
        self._cycle_levels, self._cycle_fresh = list(self._current), True
        restart_episodes(self.model, env.reset())
        self._pending = [self._next_level(i) for i in range(env.num_envs)]

    def _report_cut(self, env_index: int) -> None:
        """Report sub-environment ``env_index``'s episode as it stands (cut by dcd's cycle at a rollout's end)."""
        level, partial = self._current[env_index], self._partials.get(env_index)
        if partial is not None and partial.steps:
            outcome = {
                "return": float(self._returns[env_index]),
                "length": int(self._lengths[env_index]),
                "success": False,
                "task": np.array(level.task, dtype=np.float64),
                "level_seed": level.seed,
                "level": self.training_env.env_method("played_level", indices=[env_index])[0],
            }
            scores = {**partial.scores(), DISCOUNTED_RETURN: float(self._discounted[env_index])}
            self._report(outcome, scores, log=False, cut=True)
            self.episodes_cut += 1
        self.forget_episode(env_index)

    def _on_training_start(self) -> None:
        """Queue every sub-environment's next level; after a ``learn()`` that reset the envs (a second ``learn()``
        with ``reset_num_timesteps=True``), first take note that each now plays the level that was pending."""
        env = self.training_env
        if len(self._current) != env.num_envs:
            raise RuntimeError("call CurriculumCallback.prime(env) before learn()")
        waiting = env.env_method("has_pending_task")
        for i in range(env.num_envs):
            if waiting[i]:
                continue
            if self._pending:  # reset by learn(): the episode in progress is abandoned, never reported
                self._current[i] = self._pending[i]
                self.forget_episode(i)
                self._pending[i] = self._send(env, i)
        if not self._pending:
            self._pending = [self._send(env, i) for i in range(env.num_envs)]

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the loop's future depends on: the levels each sub-environment plays and has pending, the
        unfinished episodes' partial scores and states, episodes not yet reported, and the log window."""
        return copy.deepcopy(
            {
                "current": self._current,
                "pending": self._pending,
                "finished": self._finished,
                "partials": self._partials,
                "trajectories": self._trajectories,
                "stats": self.stats,
                "trained_steps": self.trained_steps,
                "unstored": self._unstored,
                "discounted": (self._discounted, self._discount),
                "running": (self._returns, self._lengths),
                "cycle": (self._ended, self.episodes_cut),
                "antagonist_cycle": (self._cycle_levels, self._cycle_fresh),
            }
        )

    def current_tasks(self) -> list[Any]:
        """The task each sub-environment is playing."""
        return [level.task for level in self._current]

    def forget_episode(self, env_index: int) -> None:
        """Drop what is known of sub-environment ``env_index``'s episode in progress (it was abandoned)."""
        self._partials.pop(env_index, None)
        self._trajectories.pop(env_index, None)
        self._discounted[env_index], self._discount[env_index] = 0.0, 1.0
        self._returns[env_index], self._lengths[env_index] = 0.0, 0

    def flush_unscored(self) -> None:
        """Report the episodes finished in a rollout cut short (no scores: the rollout's values are incomplete)."""
        self._flush(with_scores=False)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (instead of :meth:`prime`, on resume)."""
        state = copy.deepcopy(state)
        self._current, self._pending, self._finished = state["current"], state["pending"], state["finished"]
        self._partials, self._trajectories, self.stats = state["partials"], state["trajectories"], state["stats"]
        self.trained_steps, self._unstored = state.get("trained_steps", 0), state.get("unstored", 0)
        n = len(self._current)
        self._discounted, self._discount = state.get("discounted", (np.zeros(n), np.ones(n)))
        self._returns, self._lengths = state.get("running", (np.zeros(n), np.zeros(n, dtype=np.int64)))
        self._ended, self.episodes_cut = state.get("cycle", (np.ones(n, dtype=bool), 0))
        self._cycle_levels, self._cycle_fresh = state.get("antagonist_cycle", ([], False))

    # -- collection ------------------------------------------------------------------------------------------
    def _on_step(self) -> bool:
        buffer = getattr(self.model, "rollout_buffer", None)
        # on-policy: the buffer row SB3 adds this step to, right after on_step; off-policy: a clock, for the order
        position = buffer.pos if buffer is not None else self.num_timesteps
        student_buffer = buffer if buffer is not None else getattr(self.model, "replay_buffer", None)
        trained = [level.train for level in self._current]  # this step belongs to each sub-env's current level
        if isinstance(student_buffer, StepMasked):  # a masked student's
            student_buffer.step_mask[:] = trained
        self.trained_steps += self._unstored  # the previous step was stored, since training went on
        self._unstored = sum(trained)
        off_policy = not self.algorithm.on_policy and self.algorithm.values is not None  # scores from its values
        if off_policy:
            self._record_steps()
        rewards = np.asarray(self.locals["rewards"], dtype=np.float64)
        self._discounted += self._discount * rewards
        self._discount *= self.gamma
        self._returns += rewards
        self._lengths += 1
        for i, (done, info) in enumerate(zip(self.locals["dones"], self.locals["infos"], strict=True)):
            if not done:
                continue
            if "episode_outcome" not in info:
                raise RuntimeError(
                    "the training env does not report episode outcomes: build it with students.loop.vec_env.make_vec_env"
                )
            outcome = info["episode_outcome"]
            played = self._current[i]
            if played.seed is not None and played.seed != outcome["level_seed"]:
                raise RuntimeError(f"sub-env {i} played level seed {outcome['level_seed']}, not the {played.seed} sent")
            scores = self._critic_scores(i, info) if off_policy else None
            self._finished.append(_Finished(position, i, outcome, scores, float(self._discounted[i])))
            self._discounted[i], self._discount[i] = 0.0, 1.0
            self._returns[i], self._lengths[i] = 0.0, 0
            self._ended[i] = True
            self._current[i] = self._pending[i]
            self._pending[i] = self._next_level(i)
        return True

    def _record_steps(self) -> None:
        states, rewards = self.model._last_obs, self.locals["rewards"]  # _last_obs: the states the actions left
        assert states is not None
        for i in range(self.training_env.num_envs):
            trajectory = self._trajectories.setdefault(i, ([], []))
            trajectory[0].append({k: v[i] for k, v in states.items()} if isinstance(states, dict) else states[i])
            trajectory[1].append(float(rewards[i]))

    def _critic_scores(self, env_index: int, info: dict[str, Any]) -> dict[str, float]:
        states, rewards = self._trajectories.pop(env_index)
        truncated = info.get("TimeLimit.truncated", False)
        assert self.algorithm.values is not None
        values = self.algorithm.values(self.model, stack_observations([*states, info["terminal_observation"]]))
        last = values[-1] if truncated else 0.0
        advantages = gae(np.array(rewards), values[:-1], last, self.gamma, OFF_POLICY_GAE_LAMBDA)
        partial = _Partial()
        partial.add(advantages, values[:-1])
        return partial.scores()

    def _on_rollout_end(self) -> None:
        self.trained_steps += self._unstored  # the rollout's last step
        self._unstored = 0
        self._flush(with_scores=True)
        if self.antagonist is not None and self._cycle_levels:  # PAIRED: the antagonist plays the same levels
            self.teacher.record_antagonist(self.antagonist.play(self._cycle_levels, self._cycle_fresh))  # type: ignore[attr-defined]
            self._cycle_fresh = False
            if self.logger is not None:  # paired/* (the last adversary update's), antagonist/* (this rollout's)
                for key, value in {**self.teacher.stats(), **self.antagonist.log}.items():
                    self.logger.record(key, value)

    def _on_training_end(self) -> None:
        # PPO's train() has flattened its rollout buffer by now: whatever is left is reported without scores
        self._flush(with_scores=False)
        self._unstored = 0  # a step that stopped training (a callback returned False) is never stored

    @property
    def trained_steps_now(self) -> int:
        """The trained steps once the step in progress is stored (an evaluation during ``on_step`` counts it, as
        ``num_timesteps`` does)."""
        return self.trained_steps + self._unstored

    @property
    def episodes_finished(self) -> int:
        """Episodes finished so far, reported to the teacher or waiting for the rollout's end."""
        return self.stats.episodes + len(self._finished)

    def _flush(self, with_scores: bool) -> None:
        """Score the finished episodes (when the student has a rollout buffer) and update the teacher, in order."""
        buffer = getattr(self.model, "rollout_buffer", None)
        on_policy = with_scores and buffer is not None and getattr(buffer, "full", False)
        starts = np.zeros(self.training_env.num_envs, dtype=int)
        for item in sorted(self._finished, key=lambda f: (f.step, f.env_index)):
            scores = item.scores or {}
            if on_policy:
                scores = self._episode_scores(buffer, item.env_index, int(starts[item.env_index]), item.step)
                starts[item.env_index] = item.step + 1
            if scores:
                scores = {**scores, DISCOUNTED_RETURN: item.discounted_return}
            self._report(item.outcome, scores)
        if on_policy:  # the unfinished tails of this rollout continue in the next one
            assert buffer is not None
            for i in range(self.training_env.num_envs):
                if starts[i] < buffer.buffer_size:
                    self._carry(buffer, i, int(starts[i]))
        self._finished = []

    def _episode_scores(self, buffer: Any, env_index: int, start: int, end: int) -> dict[str, float]:
        partial = self._partials.pop(env_index, _Partial())
        partial.add(buffer.advantages[start : end + 1, env_index], buffer.values[start : end + 1, env_index])
        return partial.scores()

    def _carry(self, buffer: Any, env_index: int, start: int) -> None:
        partial = self._partials.setdefault(env_index, _Partial())
        partial.add(buffer.advantages[start:, env_index], buffer.values[start:, env_index])

    def _report(self, outcome: dict[str, Any], scores: dict[str, float], log: bool = True, cut: bool = False) -> None:
        if all(key in scores for key in self.teacher.required_scores):
            feedback = Feedback(
                episode_return=outcome["return"],
                success=outcome["success"],
                length=outcome["length"],
                scores=scores,
                level_seed=outcome["level_seed"],
                level=outcome.get("level"),
                cut=cut,
            )
            self.teacher.update(outcome["task"], feedback)
        if not log:
            return
        self.stats.add(outcome["task"], outcome["return"], outcome["success"], outcome["length"])
        if self.feasible is not None and not bool(self.feasible(outcome["task"])[0]):
            self.stats.infeasible += 1
            self.stats.infeasible_steps += outcome["length"]
        if self.logger is not None:
            self.stats.log(self.logger, self.teacher, image_every=self.image_every)
