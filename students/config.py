"""Settings from YAML files and command-line strings, checked once for every command.

One loader (:func:`load_settings`) serves ``compare``, ``simulate`` and ``distill``: a YAML mapping whose keys
are the fields of a settings dataclass, with command-line values taking precedence. The small parsers here turn
the strings a user types (``0-2,7``, ``KEY=VALUE``) into values, and the path checks refuse an output that cannot
be written before any work starts. Every problem is a :class:`ConfigError` with one line naming it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A setting, a config file or an output path that cannot be used as given."""


def load_settings(path: Path | None, overrides: Mapping[str, Any], valid: Iterable[str]) -> dict[str, Any]:
    """The settings of a YAML file (when ``path`` is given) updated with the ``overrides`` that are not ``None``.

    :raises ConfigError: a missing file, invalid YAML (``!!python`` tags included: safe loading), a file that is
        not a mapping, or keys outside ``valid`` (the message lists the valid ones)
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = config_file(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file '{path}' is not valid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file '{path}' must hold a mapping of settings")
    valid = list(valid)
    unknown = sorted(set(map(str, data)) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key(s) in '{path}': {', '.join(unknown)}; valid: {', '.join(valid)}")
    data = {key: _scientific(value) for key, value in data.items()}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return data


_SCIENTIFIC = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _scientific(value: Any) -> Any:
    """A number YAML 1.1 reads as text (``1e12``, ``5E4``) as the number a user meant (an int when whole)."""
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def shipped_configs_dir() -> Path:
    """The folder of the example experiment configs: ``experiments/`` of a checkout, or the installed package's
    copy of it (``teachrl_experiments``, package data of a wheel)."""
    checkout = Path(__file__).resolve().parents[1] / "experiments"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("teachrl_experiments")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else checkout


def shipped_configs() -> list[str]:
    """The names ``--config`` takes for the shipped experiment configs (``demo``, ``point_mass``, ...)."""
    return sorted(p.stem for p in shipped_configs_dir().glob("*.yaml"))


def config_file(path: Path | str) -> Path:
    """A ``--config`` value as a file: an existing path, or the name of a shipped config (``demo``).

    :raises ConfigError: neither, with the shipped names
    """
    if Path(path).is_file():
        return Path(path)
    shipped = shipped_configs_dir() / f"{Path(path).name}.yaml"
    if Path(path).name == str(path) and Path(path).suffix == "" and shipped.is_file():
        return shipped
    raise ConfigError(f"config file '{path}' does not exist; or give a shipped config by name: {', '.join(shipped_configs())}")


def parse_seeds(text: str | int) -> list[int]:
    """``"0-4"``, ``"0,3,7"`` or ``"0-2,10"`` to a sorted list of distinct non-negative seeds.

    :raises ConfigError: anything else
    """
    seeds: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ConfigError(f"--seeds '{text}': '{part}' is not a seed or a range like 0-4") from None
        if first < 0 or last < first:
            raise ConfigError(f"--seeds '{text}': '{part}' must be a non-negative seed or a range low-high with low <= high")
        seeds.update(range(first, last + 1))
    if not seeds:
        raise ConfigError(f"--seeds '{text}': no seed given (e.g. 0-4 or 0,1,2)")
    return sorted(seeds)


def split_names(text: str | list[str]) -> list[str]:
    """``"a, b"`` (or a list) to ``["a", "b"]``.

    :raises ConfigError: no name at all
    """
    names = [str(t).strip() for t in (text.split(",") if isinstance(text, str) else text) if str(t).strip()]
    if not names:
        raise ConfigError("no name given; expected a comma-separated list")
    return names


def parse_key_values(options: Iterable[str], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` strings to a mapping (each key once).

    :raises ConfigError: an option without ``=`` or a key given twice
    """
    parsed: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} '{option}' must look like KEY=VALUE")
        if key.strip() in parsed:
            raise ConfigError(f"{flag} gives '{key.strip()}' twice; give each key once")
        parsed[key.strip()] = value.strip()
    return parsed


def parse_yaml_values(options: Iterable[str], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings with YAML values (``observation_mode=privileged``, ``horizon=50``, ``lr=1e-3``)."""
    from students.loop.algorithms import parse_value

    parsed: dict[str, Any] = {}
    for key, text in parse_key_values(options, flag).items():
        try:
            parsed[key] = parse_value(text)
        except ValueError as exc:
            raise ConfigError(f"{flag} {key}={text}: {exc}") from None
    return parsed


def check_writable_file(path: Path, flag: str) -> None:
    """Refuse, before any work, a file path that cannot be written (nothing is created)."""
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    blocked = path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK)
    if blocked or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path}: cannot write there (not a writable file path)")


def check_writable_dir(path: Path, flag: str) -> None:
    """Refuse, before any work, a folder that cannot be created or written (nothing is created)."""
    existing = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        problem = "is a file" if existing == path else f"'{existing}' is not a writable folder"
        raise ConfigError(f"{flag} {path}: cannot write there ({problem})")


def format_seeds(seeds: list[int]) -> str:
    """The shortest ``--seeds`` text of a list: ``[0, 1, 2, 7]`` -> ``"0-2,7"``."""
    parts: list[str] = []
    for seed in sorted(set(seeds)):
        if parts and parts[-1].rpartition("-")[2].isdigit() and int(parts[-1].rpartition("-")[2]) == seed - 1:
            parts[-1] = f"{parts[-1].partition('-')[0]}-{seed}"
        else:
            parts.append(str(seed))
    return ",".join(parts)


def setting(default: Any = MISSING, help: str = "", *, factory: Any = None, **meta: Any) -> Any:
    """A settings-dataclass field with its command-line help: ``cli.py`` builds its options from these, so that an
    option and a config-file key are one setting, checked the same way.

    :param factory: a default factory (lists, dicts) instead of ``default``
    :param meta: ``multiple=True`` (a repeatable option), ``type`` (the option's type when the default does not
        tell it), ``shown`` (the default as the help shows it), ``optional=True`` (no default, but a config file
        may give it: the option is not required), ``aliases`` (other option names)
    """
    metadata = {"help": help, **meta}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(metadata=metadata) if default is MISSING else field(default=default, metadata=metadata)


def range_error(settings: Any, integers: Mapping[str, int], numbers: Mapping[str, float] | None = None) -> str | None:
    """The first of ``settings``' attributes that is not an integer (``integers``) or a number (``numbers``) at least
    its given lower bound, as one line; ``None`` when all are."""
    for key, low in integers.items():
        value = getattr(settings, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"{key} must be an integer >= {low}, got {value!r}"
    for key, bound in (numbers or {}).items():
        value = getattr(settings, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= bound:
            return f"{key} must be a number >= {bound:g}, got {value!r}"
    return None


def parse_teacher_param_options(options: Sequence[str], teachers: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``NAME.param=value`` strings to typed parameters per teacher (each checked against its teacher's signature).

    :raises ConfigError: a malformed option or one naming a teacher that is not compared
    :raises UnknownTeacherError: an unknown parameter or a bad value
    """
    from curriculum.registry import parse_teacher_params  # the teachers' registry, only when options name one

    raw: dict[str, dict[str, str]] = {name: {} for name in teachers}
    for option in options:
        key, sep, value = option.partition("=")
        name, dot, param = key.rpartition(".")
        if not sep or not dot or not name or not param:
            raise ConfigError(f"--teacher-param '{option}' must look like TEACHER.PARAM=VALUE (e.g. alp-gmm.fit_rate=150)")
        if name not in raw:
            raise ConfigError(f"--teacher-param '{option}' names teacher '{name}', which is not among: {', '.join(teachers)}")
        raw[name][param] = value
    return {name: parse_teacher_params(raw[name], name) for name in teachers}


def add_teacher_param_options(config: Any, options: Sequence[str]) -> Any:
    """Merge ``NAME.param=value`` options into a comparison's ``teacher_params`` (see
    :func:`parse_teacher_param_options`); return the config."""
    if options:
        parsed = parse_teacher_param_options(options, config.teachers)
        config.teacher_params = {**config.teacher_params, **{k: v for k, v in parsed.items() if v}}
    return config
