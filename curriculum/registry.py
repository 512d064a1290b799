"""Teacher registry: names to classes, user classes by ``module:Class`` path, parameter listings."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curriculum.adr import AdrTeacher
from curriculum.alp_gmm import AlpGmmTeacher
from curriculum.objects import load_object
from curriculum.base import Teacher
from curriculum.goal_gan import GoalGanTeacher
from curriculum.clutr import ClutrTeacher
from curriculum.covar_gmm import CovarGmmTeacher
from curriculum.lp_bandit import LpBanditTeacher
from curriculum.paired import PairedTeacher
from curriculum.plr import AccelTeacher, PlrTeacher, RobustPlrTeacher
from curriculum.random_teacher import RandomTeacher
from curriculum.riac import RiacTeacher
from curriculum.schedules import OracleTeacher, StagesTeacher
from curriculum.setter_solver import SetterSolverTeacher
from curriculum.sfl import SflTeacher
from curriculum.spdl import SpdlTeacher
from curriculum.spaces import TaskSpace

TEACHERS: dict[str, type[Teacher]] = {
    "random": RandomTeacher,
    "alp-gmm": AlpGmmTeacher,
    "covar-gmm": CovarGmmTeacher,
    "riac": RiacTeacher,
    "plr": PlrTeacher,
    "robust-plr": RobustPlrTeacher,
    "accel": AccelTeacher,
    "adr": AdrTeacher,
    "spdl": SpdlTeacher,
    "goal-gan": GoalGanTeacher,
    "lp-bandit": LpBanditTeacher,
    "stages": StagesTeacher,
    "oracle": OracleTeacher,
    "sfl": SflTeacher,
    "setter-solver": SetterSolverTeacher,
    "paired": PairedTeacher,
    "clutr": ClutrTeacher,
}

TMA = "https://github.com/flowersteam/TeachMyAgent"
TDRL = "https://github.com/flowersteam/teachDeepRL"
DCD = "https://github.com/facebookresearch/dcd"

#: where each built-in teacher comes from: (paper, the reference code its behaviour is checked against), for the
#: documentation's teacher table; a teacher's deviations from its reference are written in its class docstring
TEACHER_SOURCES: dict[str, tuple[str, str]] = {
    "random": ("domain randomisation (Tobin et al., IROS 2017)", ""),
    "alp-gmm": ("Portelas et al., CoRL 2019", TDRL),
    "covar-gmm": ("Moulin-Frier et al., 2014", TDRL),
    "riac": ("Baranes & Oudeyer, 2009", TDRL),
    "plr": ("Jiang et al., ICML 2021", DCD),
    "robust-plr": ("Jiang et al., NeurIPS 2021", DCD),
    "accel": ("Parker-Holder et al., ICML 2022", DCD),
    "adr": ("OpenAI et al., 2019", TMA),
    "spdl": ("Klink et al., NeurIPS 2020", "https://github.com/psclklnk/spdl"),
    "goal-gan": ("Florensa et al., ICML 2018", TMA),
    "lp-bandit": ("Matiisen et al., TSCL 2017", "https://github.com/RyanNavillus/Syllabus"),
    "stages": ("a user's hand-written curriculum", ""),
    "oracle": ("teachDeepRL's hand-made curriculum (Portelas et al., CoRL 2019)", TDRL),
    "sfl": ("Rutherford et al., NeurIPS 2024", "https://github.com/amacrutherford/sampling-for-learnability"),
    "setter-solver": ("Racanière et al., ICLR 2020", TMA),
    "paired": ("Dennis et al., NeurIPS 2020", DCD),
    "clutr": ("Azad et al., 2023", "https://github.com/clutr/clutr"),
}

#: the declared range of every numeric teacher parameter, by name (the name means the same in every teacher that
#: has it): (low, high, low excluded). A parameter not listed must still be a finite number of its default's type.
PARAM_RANGES: dict[str, tuple[float, float, bool]] = {
    **dict.fromkeys(("fit_rate", "min_k", "max_k", "nb_split_attempts", "buffer_size", "queue_len"), (1, math.inf, False)),
    **dict.fromkeys(("update_frequency", "n_rollouts", "update_size", "gan_iterations", "every"), (1, math.inf, False)),
    **dict.fromkeys(("n_candidates", "rollouts", "update_every", "hidden", "blocks", "level_edits"), (1, math.inf, False)),
    **dict.fromkeys(("update_offset", "alpha_offset", "num_edits"), (0, math.inf, False)),
    **dict.fromkeys(("random_task_ratio", "min_points_fraction", "min_width_fraction", "p_alp", "p_random"), (0, 1, False)),
    **dict.fromkeys(("replay_prob", "min_fill", "staleness_coef", "edit_step", "mutate_quantile"), (0, 1, False)),
    **dict.fromkeys(("boundary_sampling_p", "std_lower_bound", "goid_low", "goid_high", "p_old"), (0, 1, False)),
    **dict.fromkeys(("epsilon", "buffer_share"), (0, 1, False)),
    **dict.fromkeys(("score_alpha", "step_size", "alpha"), (0, 1, True)),
    **dict.fromkeys(("temperature", "max_kl", "window"), (0, math.inf, True)),
    **dict.fromkeys(
        ("perturbation_std", "zeta", "kl_threshold", "noise_level", "buffer_distance", "loss_noise"), (0, math.inf, False)
    ),
    "max_region_size": (2, math.inf, False),
    **dict.fromkeys(("n_blocks",), (0, math.inf, False)),
    **dict.fromkeys(("z_dim", "n_epochs", "latent_dim", "vae_batch_size", "embed_size"), (1, math.inf, False)),
    **dict.fromkeys(("encoder_size", "decoder_size", "decoder_layers"), (1, math.inf, False)),
    **dict.fromkeys(("vae_iterations",), (0, math.inf, False)),
    **dict.fromkeys(("vae_learning_rate", "recons_weight"), (0, math.inf, True)),
    **dict.fromkeys(("learning_rate", "clip_range", "max_grad_norm"), (0, math.inf, True)),
    **dict.fromkeys(("entropy_coef",), (0, math.inf, False)),
    **dict.fromkeys(("gamma", "gae_lambda"), (0, 1, False)),
}

# Constructor arguments every teacher takes from the caller rather than from the user's parameters.
_COMMON_ARGS = ("self", "task_space", "seed", "return_bounds")


class UnknownTeacherError(ValueError):
    """A teacher name (or ``module:Class`` path) that does not resolve, or a parameter it does not take."""


@dataclass(frozen=True)
class TeacherParam:
    """One keyword parameter of a teacher, as ``list teachers`` shows it."""

    name: str
    default: Any
    help: str


def register_teacher(name: str, cls: type[Teacher]) -> None:
    """Make ``cls`` available under ``name`` (e.g. from a user's plug-in module)."""
    if not (isinstance(cls, type) and issubclass(cls, Teacher)):
        raise TypeError(f"{cls!r} is not a Teacher subclass")
    TEACHERS[name] = cls


def teacher_names() -> list[str]:
    """The registered teachers' names (built-in and registered with :func:`register_teacher`)."""
    return list(TEACHERS)


def teacher_class(name: str) -> type[Teacher]:
    """Resolve a registered name, or a ``module:Class`` path to a user's Teacher subclass."""
    if name in TEACHERS:
        return TEACHERS[name]
    if ":" not in name:
        raise UnknownTeacherError(f"unknown teacher '{name}'; valid: {', '.join(TEACHERS)} (or a module:Class path)")
    try:
        obj = load_object(name)
    except LookupError as exc:
        raise UnknownTeacherError(f"cannot load teacher '{name}': {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Teacher)):
        raise UnknownTeacherError(f"'{name}' is not a subclass of curriculum.base.Teacher")
    return obj


def teacher_params(cls: type[Teacher]) -> list[TeacherParam]:
    """The user-settable parameters of a teacher class: constructor defaults and ``:param:`` docstring lines."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass documents only the parameters it adds or redefines
        docs.update(_param_docs(inspect.getdoc(klass) or "") if "__doc__" in vars(klass) else {})
    params = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in _COMMON_ARGS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        params.append(TeacherParam(p.name, default, docs.get(p.name, "")))
    if cls.PRESETS:
        names = ", ".join(cls.PRESETS)
        params.append(TeacherParam("preset", "", f"named settings ({names}), under the parameters given with it"))
    return params


def _param_docs(doc: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in re.finditer(r":param (\w+):(.*?)(?=\n\s*:|\Z)", doc, flags=re.S):
        found[match.group(1)] = " ".join(match.group(2).split())
    return found


def make_teacher(
    name: str,
    task_space: TaskSpace,
    seed: int = 0,
    return_bounds: tuple[float, float] | None = None,
    **params: Any,
) -> Teacher:
    """Build a teacher by name, checking its parameters first.

    :raises UnknownTeacherError: unknown name or parameter
    """
    cls = teacher_class(name)
    valid = {p.name for p in teacher_params(cls)}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise UnknownTeacherError(
            f"teacher '{name}' has no parameter {', '.join(unknown)}; valid: {', '.join(sorted(valid)) or 'none'}"
        )
    preset = params.pop("preset", "")
    if preset:
        if preset not in cls.PRESETS:
            raise UnknownTeacherError(f"teacher '{name}' has no preset '{preset}'; valid: {', '.join(cls.PRESETS)}")
        params = {**cls.PRESETS[preset], **params}
    defaults = {p.name: p.default for p in teacher_params(cls)}
    for key, value in params.items():
        problem = param_problem(key, value, defaults[key])
        if problem:
            raise UnknownTeacherError(f"teacher '{name}': {key} {problem}")
    return cls(task_space, seed=seed, return_bounds=return_bounds, **params)


def param_problem(key: str, value: Any, default: Any) -> str | None:
    """What is wrong with a numeric teacher parameter (its default's type, finite, its declared range), or
    ``None``; parameters whose default is not a number are the teacher's to check."""
    if isinstance(default, bool) or not isinstance(default, int | float):
        return None
    integer = isinstance(default, int)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        return f"must be {'an integer' if integer else 'a number'}, got {value!r}"
    return range_problem(value, PARAM_RANGES.get(key, (-math.inf, math.inf, False)))


def range_problem(value: float, bounds: tuple[float, float, bool]) -> str | None:
    """``"must be a finite number in [low, high], got v"`` when a number is not finite or outside ``bounds`` =
    (low, high, low excluded), else ``None`` (teacher parameters here, student hyperparameters in
    :mod:`students.loop.algorithms`)."""
    low, high, low_open = bounds
    inside = (value > low if low_open else value >= low) and value <= high
    if math.isfinite(value) and inside:
        return None
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if math.isinf(high) else ']'}"
    return f"must be a finite number in {interval}, got {value!r}"


def teacher_for(name: str, env: Any, seed: int = 0, **params: Any) -> Teacher:
    """A teacher of ``env``'s task space and return bounds that has read what it needs from ``env``
    (:meth:`Teacher.prepare`: an easy region, task distributions...).

    :raises UnknownTeacherError: unknown name or parameter
    """
    teacher = make_teacher(name, env.task_space, seed=seed, return_bounds=env.return_bounds, **params)
    teacher.prepare(env)
    return teacher


def parse_param_value(text: str, default: Any) -> Any:
    """Convert a command-line value to the type of the parameter's default."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got '{text}'")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def parse_teacher_params(specs: Mapping[str, str], name: str) -> dict[str, Any]:
    """Typed keyword parameters of teacher ``name`` from ``{param: text}`` (a key may be prefixed ``NAME.``)."""
    defaults = {p.name: p.default for p in teacher_params(teacher_class(name))}
    parsed = {}
    for key, text in ((k.removeprefix(f"{name}."), v) for k, v in specs.items()):
        if key not in defaults:
            raise UnknownTeacherError(
                f"teacher '{name}' has no parameter '{key}'; valid: {', '.join(sorted(defaults)) or 'none'}"
            )
        try:
            parsed[key] = parse_param_value(text, defaults[key])
        except ValueError as exc:
            raise UnknownTeacherError(f"bad value for {name}.{key}: {exc}") from exc
    return parsed
