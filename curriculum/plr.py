"""Regret-based teachers over parametric levels: PLR (Jiang et al. 2021), Robust PLR and ACCEL (Parker-Holder et al.
2022).

A *level* is a task vector plus the environment's level seed (the same task with another seed is another level).
The teacher keeps a buffer of levels with a regret *score* each, estimated by the student from its own episodes
(``Feedback.scores``):

- ``positive_value_loss`` (default): mean over the episode's steps of max(GAE advantage, 0);
- ``value_l1``: mean |advantage|;
- ``max_mc``: the best return ever seen on the level minus the mean value estimate along the episode (the
  student reports ``mean_value``; the teacher keeps each level's best return).

Each episode either *replays* a buffer level or plays a *new* random level with a fresh seed. Once the buffer holds
``min_fill * buffer_size`` levels, it replays with probability min(fill, ``replay_prob``), fill = held levels /
``buffer_size`` (``replay_schedule="proportionate"``, dcd's default: ``sample_replay_decision`` with
``sample_full_distribution``), or ``replay_prob`` (``"fixed"``); before, never. Replays are drawn from
P = (1 - staleness_coef) * h + staleness_coef * P_stale, where h(level) is proportional to
(1 / rank of its score) ** (1 / temperature) (rank 1 = highest score) and P_stale is proportional to the number of
episodes sampled since the level was last sampled. A replayed level's score becomes
(1 - score_alpha) * old + score_alpha * new (1 = replace, the reference's choice). A new level enters the buffer if
there is room, or else if its score beats that of the level with the lowest replay probability, which it replaces.

Two cycles (``cycle``):

- ``rollout`` (default): dcd's cycle (``envs/runners/adversarial_runner.py``, ``run()``), for on-policy students
  (PPO, A2C; an off-policy student is refused: give it ``cycle=episode``). The
  student (:class:`students.loop.curriculum.CurriculumCallback`) calls :meth:`PlrTeacher.begin_rollout` at each
  rollout's start; the decision is taken once for all sub-environments, each of which is reset to a level of that
  kind (an episode still running is cut there, as dcd's "cliffhanger": scored as it stands, its last value
  bootstrapped). With rollouts shorter than an episode (A2C) a decision holds until every sub-environment has
  ended an episode, and :meth:`PlrTeacher.continue_rollout` counts the cycle's further rollouts. In a *replay*
  rollout every level is a replay, an episode that ends is followed by another
  replay sample, and the student takes its full update. In a *new-level* rollout every sub-environment plays a
  fresh level, again after each episode that ends (dcd resets the agent on the same level), and Robust PLR's and
  ACCEL's students take no update (``no_exploratory_grad_updates``). ACCEL follows each replay rollout with an
  *edit* rollout: children of the levels the replay rollout started with (dcd's ``base_levels="batch"``), played
  without gradient and admitted by score; its per-episode children are off in this cycle. A loop of one's own
  calls ``begin_rollout`` at each rollout's start (the levels drawn before the first are per-episode draws).
- ``episode``: the replay decision is taken per episode, so a rollout mixes replayed and new levels; Robust PLR and
  ACCEL mask the new levels' transitions out of the student's minibatches (so a masked student takes fewer
  gradient steps per rollout than plain PPO, a number that depends on the PPO layout), and ACCEL edits each
  replayed level after its episode. The only cycle for off-policy students.

Measured (docs/teachers.md, "dcd's cycle"; ``results/reference/cycle_point_mass/``, ``cycle_maze/``): final mastered %,
seeds 0-2, 500k environment steps, per episode -> dcd's cycle: point mass PLR 48.4 -> 58.8, Robust PLR 33.3 -> 15.0,
ACCEL 13.7 -> 10.5 (random 40.5); maze PLR 76.8 -> 66.7, Robust PLR 43.4 -> 46.5, ACCEL 43.4 -> 37.4 (random 76.8).
Under the cycle Robust PLR and ACCEL train on 40% of the environment steps (dcd counts all of them too).
"""

from __future__ import annotations

from collections import deque
from typing import Any, ClassVar

import numpy as np

from curriculum.base import MEAN_VALUE, POSITIVE_VALUE_LOSS, VALUE_L1, Feedback, FeedbackError, Level, Teacher
from curriculum.spaces import BoxTaskSpace, Task

#: dcd's editor action sets for structured levels (``environments.maze_levels.EDITORS``; teachers do not import envs)
EDITORS = ("walls_none", "walls_none_goal", "walls_none_agent_goal")

#: score name -> the ``Feedback.scores`` entry it is computed from
SCORES = {POSITIVE_VALUE_LOSS: POSITIVE_VALUE_LOSS, VALUE_L1: VALUE_L1, "max_mc": MEAN_VALUE}
_SEED_RANGE = 2**31 - 1
REPLAY_SCHEDULES = ("proportionate", "fixed")
CYCLES = ("episode", "rollout")
ROLLOUT_KINDS = ("replay", "new", "edit")


class LevelBuffer:
    """Levels with scores, staleness, replay counts and parent links, in fixed-capacity numpy arrays.

    :param capacity: number of levels it holds
    :param dim: task dimension
    """

    def __init__(self, capacity: int, dim: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.tasks = np.zeros((capacity, dim))
        self.seeds = np.full(capacity, -1, dtype=np.int64)
        self.scores = np.zeros(capacity)
        self.max_returns = np.full(capacity, -np.inf)
        self.last_sampled = np.zeros(capacity, dtype=np.int64)  # value of the teacher's clock at the last sampling
        self.replays = np.zeros(capacity, dtype=np.int64)
        self.parents = np.full(capacity, -1, dtype=np.int64)  # level seed of the parent (ACCEL children), else -1
        self.texts: list[str | None] = [None] * capacity  # the level's text, where the env has structured levels
        self.slot_of: dict[int, int] = {}  # level seed -> slot

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A buffer pickled before levels had texts reads with none."""
        state.setdefault("texts", [None] * int(state["capacity"]))
        self.__dict__.update(state)

    def find(self, seed: int, task: np.ndarray) -> int | None:
        """The slot holding this level, or ``None``."""
        slot = self.slot_of.get(seed)
        return slot if slot is not None and np.array_equal(self.tasks[slot], task) else None

    def probabilities(self, clock: int, temperature: float, staleness_coef: float) -> np.ndarray:
        """Replay distribution over the held levels (see the module docstring)."""
        n = self.size
        ranks = np.empty(n)
        ranks[np.argsort(-self.scores[:n], kind="stable")] = np.arange(1, n + 1)
        rank_weights = ranks ** (-1.0 / temperature)
        staleness = (clock - self.last_sampled[:n]).astype(np.float64)
        stale = staleness / staleness.sum() if staleness.sum() > 0 else np.full(n, 1.0 / n)
        return (1.0 - staleness_coef) * rank_weights / rank_weights.sum() + staleness_coef * stale

    def put(
        self,
        slot: int,
        task: np.ndarray,
        seed: int,
        score: float,
        episode_return: float,
        clock: int,
        parent: int,
        text: str | None = None,
    ) -> None:
        """Write a level into ``slot`` (a new slot at the end, or one whose level it replaces)."""
        if slot == self.size:
            self.size += 1
        else:
            self.slot_of.pop(int(self.seeds[slot]), None)
        self.tasks[slot], self.seeds[slot], self.scores[slot] = task, seed, score
        self.max_returns[slot], self.last_sampled[slot] = episode_return, clock
        self.replays[slot], self.parents[slot], self.texts[slot] = 0, parent, text
        self.slot_of[seed] = slot


class PlrTeacher(Teacher[BoxTaskSpace]):
    """Prioritized Level Replay: replay the levels where the student's regret estimate is highest.

    The student learns from every episode (new levels too). Needs the student's scores and each episode's level
    seed (``cli.py run`` provides both; the simulated student does not).

    :param score: regret estimate: ``positive_value_loss``, ``value_l1`` or ``max_mc``
    :param replay_prob: probability of replaying a buffer level (once the buffer is filled enough; the cap of the
        proportionate schedule)
    :param replay_schedule: proportionate (replay with probability min(fill, replay_prob), dcd's default) or fixed
    :param cycle: rollout (dcd's: one decision per rollout, on-policy students) or episode (one per episode)
    :param buffer_size: number of levels the buffer holds
    :param min_fill: share of ``buffer_size`` the buffer must hold before any replay
    :param temperature: rank prioritisation temperature (beta)
    :param staleness_coef: weight of staleness in the replay distribution (rho)
    :param score_alpha: weight of a new score in a replayed level's score (1 replaces it)
    """

    needs = "the student's value score (positive_value_loss by default), level seeds"
    state_attrs: ClassVar[tuple[str, ...]] = (
        "buffer",
        "clock",
        "recent_kinds",
        "pending_parents",
        "rollout_kind",
        "rollout_levels",
        "rollout_counts",
    )
    #: whether new levels are only scored, not trained on
    robust: ClassVar[bool] = False

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        score: str = "positive_value_loss",
        replay_prob: float = 0.5,
        buffer_size: int = 1000,
        min_fill: float = 0.5,
        temperature: float = 0.1,
        staleness_coef: float = 0.3,
        score_alpha: float = 1.0,
        replay_schedule: str = "proportionate",
        cycle: str = "rollout",
    ) -> None:
        super().__init__(task_space, seed, return_bounds)
        if cycle not in CYCLES:
            raise ValueError(f"unknown cycle '{cycle}'; valid: {', '.join(CYCLES)}")
        self.cycle = cycle
        self.rollout_kind = ""  # rollout cycle: the kind of the rollout in progress
        self.rollout_levels: list[Level] = []  # and the levels it started with
        self.rollout_counts = dict.fromkeys(("replay", "new", "edit", "student_updates"), 0)
        self.n_envs = 0
        if replay_schedule not in REPLAY_SCHEDULES:
            raise ValueError(f"unknown replay_schedule '{replay_schedule}'; valid: {', '.join(REPLAY_SCHEDULES)}")
        self.replay_schedule = replay_schedule
        if score not in SCORES:
            raise ValueError(f"unknown score '{score}'; valid: {', '.join(SCORES)}")
        for name, value in (("replay_prob", replay_prob), ("min_fill", min_fill), ("staleness_coef", staleness_coef)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        if temperature <= 0 or not 0 < score_alpha <= 1:
            raise ValueError(f"need temperature > 0 and 0 < score_alpha <= 1, got {temperature} and {score_alpha}")
        self.score, self.replay_prob, self.buffer_size, self.min_fill = score, replay_prob, buffer_size, min_fill
        self.temperature, self.staleness_coef, self.score_alpha = temperature, staleness_coef, score_alpha
        self.buffer = LevelBuffer(buffer_size, task_space.dim)
        self.clock = 0  # levels sampled so far
        self.recent_kinds: deque[str] = deque(maxlen=1000)  # "replay", "new" or "child", for the logs
        self.pending_parents: dict[int, int] = {}  # level seed of a child in play -> its parent's seed
        self.start_space: BoxTaskSpace = task_space
        # the env's class of structured levels, which ACCEL reads (prepare) to edit and replay levels as structures;
        # PLR and Robust PLR replay a level from its task and seed, which build it again
        self.level_type: Any = None

    @property
    def required_scores(self) -> tuple[str, ...]:
        return (SCORES[self.score],)

    # -- sampling ------------------------------------------------------------------------------------------
    def sample_level(self) -> Level:
        self.clock += 1
        level = self._rollout_level() if self.rollout_kind else self._next_level()
        self.recent_kinds.append(self._kind)
        if self.rollout_kind and len(self.rollout_levels) < self.n_envs:
            self.rollout_levels.append(level)
        return level

    # -- dcd's cycle (cycle="rollout") ---------------------------------------------------------------------
    def begin_rollout(self, n_envs: int) -> str:
        """Decide what the rollout starting now plays in all ``n_envs`` sub-environments: ``"replay"``, ``"new"``
        or ``"edit"`` (ACCEL, after a replay rollout); the next ``n_envs`` levels sampled are its first levels.

        :raises RuntimeError: the teacher was built with ``cycle="episode"``
        """
        if self.cycle != "rollout":
            raise RuntimeError(f"{type(self).__name__} decides per episode (cycle=episode): begin_rollout is not used")
        if self._edit_rollout():
            kind = "edit"
        elif self._warm() and self.rng.random() < self.replay_rate():
            kind = "replay"
        else:
            kind = "new"
        self.rollout_kind, self.rollout_levels, self.n_envs = kind, [], n_envs
        self.rollout_counts[kind] += 1
        self.rollout_counts["student_updates"] += int(self.rollout_trains)
        return kind

    def continue_rollout(self) -> None:
        """Count one more rollout of the cycle in progress (rollouts shorter than an episode: see
        :class:`students.loop.curriculum.CurriculumCallback`)."""
        if not self.rollout_kind:
            raise RuntimeError("continue_rollout before the first begin_rollout")
        self.rollout_counts[self.rollout_kind] += 1
        self.rollout_counts["student_updates"] += int(self.rollout_trains)

    @property
    def rollout_trains(self) -> bool:
        """Whether the student learns from the rollout in progress (rollout cycle)."""
        return self.rollout_kind == "replay" or (self.rollout_kind == "new" and not self.robust)

    def _edit_rollout(self) -> bool:
        """Whether the rollout starting now is an edit rollout (ACCEL queues one after each replay rollout)."""
        return False

    def _warm(self) -> bool:
        return bool(self.buffer.size) and self.buffer.size >= self.min_fill * self.buffer_size

    def _rollout_level(self) -> Level:
        if self.rollout_kind == "replay":
            return self._replay_level()
        return self._new_level()

    def _replay_level(self) -> Level:
        buffer = self.buffer
        slot = int(self.rng.choice(buffer.size, p=self.replay_probabilities()))
        buffer.last_sampled[slot] = self.clock
        buffer.replays[slot] += 1
        self._kind = "replay"
        return Level(buffer.tasks[slot].copy(), int(buffer.seeds[slot]), train=True, structure=self._structure(slot))

    def _structure(self, slot: int) -> Any:
        """The level held in ``slot`` as a structure, when the teacher knows its env's levels (``level_type``, read by
        :meth:`prepare`) and the level's text; else ``None`` (the env builds it again from its task and seed)."""
        text = self.buffer.texts[slot]
        return None if self.level_type is None or text is None else self.level_type.parse(text)

    def _new_level(self) -> Level:
        self._kind = "new"
        return Level(self.start_space.sample(self.rng), self._fresh_seed(), train=not self.robust)

    def _sample(self) -> Task:
        return self.sample_level().task

    def _next_level(self) -> Level:
        if self._warm() and self.rng.random() < self.replay_rate():
            return self._replay_level()
        return self._new_level()

    def replay_rate(self) -> float:
        """The probability of a replay once the buffer is filled enough (see ``replay_schedule``)."""
        if self.replay_schedule == "fixed":
            return self.replay_prob
        return min(self.buffer.size / self.buffer_size, self.replay_prob)

    def replay_probabilities(self) -> np.ndarray:
        """The current replay distribution over the buffer's levels (slot order)."""
        return self.buffer.probabilities(self.clock, self.temperature, self.staleness_coef)

    def _fresh_seed(self) -> int:
        while True:
            seed = int(self.rng.integers(_SEED_RANGE))
            if seed not in self.buffer.slot_of and seed not in self.pending_parents:
                return seed

    # -- learning ------------------------------------------------------------------------------------------
    def _update(self, task: Task, feedback: Feedback) -> None:
        if feedback.level_seed is None:
            raise FeedbackError(f"{type(self).__name__} needs each episode's level seed (Feedback.level_seed)")
        key = SCORES[self.score]
        if key not in feedback.scores:
            raise FeedbackError(f"{type(self).__name__} with score '{self.score}' needs the student's '{key}' score")
        seed, buffer, task = int(feedback.level_seed), self.buffer, np.asarray(task)
        slot = buffer.find(seed, task)
        if slot is None:  # a new level (or a child): admit it if there is room or it beats the lowest priority
            parent = self.pending_parents.pop(seed, -1)
            score = self._score_of(feedback, feedback.episode_return)
            self._admit(task, seed, score, feedback.episode_return, parent, feedback.level)
            return
        best = max(float(buffer.max_returns[slot]), feedback.episode_return)
        new = self._score_of(feedback, best)
        buffer.scores[slot] = (1.0 - self.score_alpha) * buffer.scores[slot] + self.score_alpha * new
        buffer.max_returns[slot] = best
        if feedback.level is not None:
            buffer.texts[slot] = feedback.level
        self._after_replay(slot)

    def _score_of(self, feedback: Feedback, best_return: float) -> float:
        if self.score == "max_mc":
            return best_return - float(feedback.scores[MEAN_VALUE])
        return float(feedback.scores[SCORES[self.score]])

    def _admit(
        self, task: np.ndarray, seed: int, score: float, episode_return: float, parent: int, text: str | None = None
    ) -> bool:
        buffer = self.buffer
        if buffer.size < buffer.capacity:
            slot = buffer.size
        else:
            slot = int(np.argmin(self.replay_probabilities()))
            if score <= buffer.scores[slot]:
                return False
        buffer.put(slot, task, seed, score, episode_return, self.clock, parent, text)
        return True

    def _after_replay(self, slot: int) -> None:
        """Hook run after a replayed level's score is updated (ACCEL mutates it)."""

    # -- diagnostics ---------------------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        buffer, n = self.buffer, self.buffer.size
        kinds = list(self.recent_kinds)
        return {
            "buffer_size": float(n),
            "score_mean": float(buffer.scores[:n].mean()) if n else 0.0,
            "score_max": float(buffer.scores[:n].max()) if n else 0.0,
            "replay_share": kinds.count("replay") / len(kinds) if kinds else 0.0,
            "staleness_mean": float((self.clock - buffer.last_sampled[:n]).mean()) if n else 0.0,
            **(
                {f"{k}_rollouts" if k in ROLLOUT_KINDS else k: float(v) for k, v in self.rollout_counts.items()}
                if self.cycle == "rollout"
                else {}
            ),
        }

    def plot_levels(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        n = self.buffer.size
        return (self.buffer.tasks[:n].copy(), self.buffer.scores[:n].copy(), "score") if n else None


class RobustPlrTeacher(PlrTeacher):
    """Robust PLR: as PLR, but the student takes no gradient from episodes on new levels; they are only scored.

    Under dcd's cycle (the default) the student takes no update after a new-level rollout; with ``cycle=episode``
    it must be able to mask updates (``cli.py run`` uses a masked PPO/A2C, whose rollout minibatches leave out the
    transitions of those episodes, and for SAC/TD3/TQC a replay buffer that never samples them).

    Parameters as for ``plr``.
    """

    robust = True
    masks_updates = True


class AccelTeacher(RobustPlrTeacher):
    """ACCEL: Robust PLR whose high-regret replayed levels are mutated into children.

    Under dcd's cycle (the default) each replay rollout is followed by an edit rollout of children of the levels it
    started with (see the module's docstring). With ``cycle=episode``, after a replay episode whose level's score
    is at least the ``mutate_quantile`` quantile of the buffer's scores, a child is queued. A child is
    ``num_edits`` edits of its parent, each moving one random dimension by ``edit_step`` times its range times a
    factor drawn from {-1, 0, +1} (``edit_moves="discrete"``, dcd's edits of parametric levels) or from U(-1, 1)
    (``"uniform"``), clipped to the bounds, with a fresh level seed. Queued children are played next, without
    gradient, and admitted by the same rule as new levels (their parent's seed is kept). New random
    levels come from the environment's easy region when ``easy_start`` is set and the environment defines one
    (``easy_task_space``; see ``cli.py list envs``).

    On an environment with editable structured levels (``level_type`` with ``mutate``: the maze) a child is the
    parent level itself edited, as dcd's ACCEL edits its maze: ``level_edits`` cells (dcd's ``mutate_level``, see
    :meth:`environments.maze_levels.MazeLevel.mutate`), each made wall, empty or the goal (``editor``, dcd's
    ``walls_none_goal``); its task is what it holds (walls and lava counted, clipped to the task space). The defaults
    are dcd's maze config (``mg_60b_uni_accel_empty.json``: 5 edits); ``num_edits``, ``edit_step`` and
    ``edit_moves`` are the box edits' (dcd's parametric levels: 3 edits in its BipedalWalker config). Children are
    kept solvable (``solvable_children``: an edit drawn again, up to 100 times, until the goal can be reached, as the
    generated levels are solvable by construction; a parent that no draw keeps solvable is played again as its own
    child, counted in ``refused_edits``); dcd admits unsolvable children: ``solvable_children=false``.
    Deviation: dcd's ``base_levels="easy"`` (its maze and walker configs) edits the replay rollout's levels with
    the lowest mean return minus value loss (its comment says "top 4"); here the children's parents are the levels
    the replay rollout started with (dcd's default, ``base_levels="batch"``).

    Other parameters as for ``plr`` (``replay_prob`` defaults to 0.9, the reference's ACCEL setting).

    Defaults are dcd's: every replayed level gets a child (``mutate_quantile=0``) and edits move by whole steps
    (``edit_moves="discrete"``). An earlier version mutated only replays at or above the buffer's median score with
    uniform moves; on the point-mass gate (PPO, 500k steps, seeds 0-2, the old semi-implicit dynamics) both gave the
    same within noise: 16.3 ± 6.0 % mastered (earlier) vs 15.0 ± 1.1 % (dcd's).

    :param num_edits: edits per child
    :param edit_step: largest move of one edit, as a share of the dimension's range
    :param edit_moves: ``discrete`` ({-1, 0, +1} x step) or ``uniform`` (U(-1, 1) x step)
    :param mutate_quantile: replayed levels scoring at least this quantile of the buffer's scores get a child
    :param easy_start: draw new random levels from the environment's easy region
    :param level_edits: cells edited per child on structured levels
    :param editor: what an edited cell may become on structured levels: walls_none, walls_none_goal or
        walls_none_agent_goal (dcd's editor action sets)
    :param solvable_children: on structured levels, draw an edit again until the child is solvable
    """

    state_attrs = (*RobustPlrTeacher.state_attrs, "children", "refused_edits")

    def __init__(
        self,
        task_space: BoxTaskSpace,
        seed: int = 0,
        return_bounds: tuple[float, float] | None = None,
        score: str = "positive_value_loss",
        replay_prob: float = 0.9,
        buffer_size: int = 1000,
        min_fill: float = 0.5,
        temperature: float = 0.1,
        staleness_coef: float = 0.3,
        score_alpha: float = 1.0,
        num_edits: int = 3,
        edit_step: float = 0.05,
        mutate_quantile: float = 0.0,
        easy_start: bool = True,
        edit_moves: str = "discrete",
        replay_schedule: str = "proportionate",
        cycle: str = "rollout",
        level_edits: int = 5,
        editor: str = "walls_none_goal",
        solvable_children: bool = True,
    ) -> None:
        super().__init__(
            task_space,
            seed,
            return_bounds,
            score,
            replay_prob,
            buffer_size,
            min_fill,
            temperature,
            staleness_coef,
            score_alpha,
            replay_schedule,
            cycle,
        )
        if num_edits < 1 or not 0 < edit_step <= 1 or not 0 <= mutate_quantile <= 1:
            raise ValueError("need num_edits >= 1, 0 < edit_step <= 1 and 0 <= mutate_quantile <= 1")
        self.num_edits, self.edit_step, self.mutate_quantile, self.easy_start = (
            num_edits,
            edit_step,
            mutate_quantile,
            easy_start,
        )
        if edit_moves not in ("discrete", "uniform"):
            raise ValueError(f"unknown edit_moves '{edit_moves}'; valid: discrete, uniform")
        self.edit_moves = edit_moves
        if level_edits < 1:
            raise ValueError(f"level_edits must be >= 1, got {level_edits}")
        if editor not in EDITORS:
            raise ValueError(f"unknown editor '{editor}'; valid: {', '.join(EDITORS)}")
        self.level_edits, self.editor, self.solvable_children = level_edits, editor, bool(solvable_children)
        self.children: deque[Level] = deque()
        self.refused_edits = 0

    def load_state_dict(self, state: Any) -> None:
        super().load_state_dict({"refused_edits": 0, **state})  # a state saved before structured edits had none

    def prepare(self, env: Any) -> None:
        """Read the env's easy region, and its level type where its levels are editable structures."""
        self.set_start_space(getattr(env, "easy_task_space", None))
        level_type = getattr(env, "level_type", None) if getattr(env, "structured_levels", False) else None
        self.level_type = level_type if hasattr(level_type, "mutate") else None

    def set_start_space(self, space: BoxTaskSpace | None) -> None:
        """Where new random levels come from (with ``easy_start``); ``None`` means the whole task space.

        :raises ValueError: the region is not inside the task space
        """
        if space is None or not self.easy_start:
            self.start_space = self.task_space
            return
        if (
            space.dim != self.task_space.dim
            or np.any(space.low < self.task_space.low)
            or np.any(space.high > self.task_space.high)
        ):
            raise ValueError("the easy start region must lie inside the task space")
        self.start_space = space

    def _next_level(self) -> Level:
        if self.children:
            self._kind = "child"
            return self.children.popleft()
        return super()._next_level()

    def _edit_rollout(self) -> bool:
        """After a replay rollout: queue a child of each level it started with (dcd's ``base_levels="batch"``)."""
        if self.rollout_kind != "replay":
            return False
        self.children.clear()
        for base in self.rollout_levels:
            self.children.append(self._child(np.asarray(base.task), base.structure, int(base.seed)))  # type: ignore[arg-type]
        return bool(self.children)

    def _child(self, task: np.ndarray, structure: Any, parent_seed: int) -> Level:
        """A child of the level ``(task, structure)``: its structure edited where the env's levels are editable,
        else its task vector (:meth:`mutate`); a fresh level seed, played without gradient.

        :raises RuntimeError: the env's levels are editable but the parent's structure is unknown
        """
        seed = self._fresh_seed()
        self.pending_parents[seed] = parent_seed
        if self.level_type is None:
            return Level(self.mutate(task), seed, train=False)
        if structure is None:
            raise RuntimeError(
                "ACCEL edits this env's levels as structures, but a replayed level came without one: the env must "
                "report each episode's level (info['level'])"
            )
        child = structure.mutate(self.rng, self.level_edits, self.editor, solvable_only=self.solvable_children)
        if child is None:
            child, self.refused_edits = structure, self.refused_edits + 1
        return Level(self.task_space.clip(child.task), seed, train=False, structure=child)

    def _rollout_level(self) -> Level:
        if self.rollout_kind == "edit" and self.children:
            self._kind = "child"
            return self.children.popleft()
        return super()._rollout_level()

    def _after_replay(self, slot: int) -> None:
        if self.cycle == "rollout":  # children come from the edit rollouts
            return
        buffer = self.buffer
        if buffer.scores[slot] < np.quantile(buffer.scores[: buffer.size], self.mutate_quantile):
            return
        self.children.append(self._child(buffer.tasks[slot], self._structure(slot), int(buffer.seeds[slot])))

    def mutate(self, task: np.ndarray) -> np.ndarray:
        """A child of ``task``: ``num_edits`` random one-dimension moves within the bounds."""
        low, high = self.task_space.low, self.task_space.high
        child = np.array(task, dtype=np.float64)
        for _ in range(self.num_edits):
            d = int(self.rng.integers(self.task_space.dim))
            factor = self.rng.integers(-1, 2) if self.edit_moves == "discrete" else self.rng.uniform(-1.0, 1.0)
            step = factor * self.edit_step * (high[d] - low[d])
            child[d] = min(high[d], max(low[d], child[d] + step))
        return child

    def stats(self) -> dict[str, float]:
        kinds = list(self.recent_kinds)
        return {
            **super().stats(),
            "child_share": kinds.count("child") / len(kinds) if kinds else 0.0,
            **({"refused_edits": float(self.refused_edits)} if self.level_type is not None else {}),
        }
