"""mkdocs hooks: the pages' generated parts, from the code itself, so that they cannot drift from it.

A page holds a marker ``<!-- generated: NAME -->``, replaced at build time by ``GENERATED[NAME]()``: the teachers
(from the registry and the classes' docstrings), the environments (from ``describe_env``, with a frame of each
from ``docs/img/envs/``, which ``make docs-frames`` renders) and the reproductions (from ``cli.py reproduce``'s
table and the committed references). The committed references' plots are served under ``reference/``.
``tests/test_docs.py`` imports this file and checks what it generates.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `mkdocs build` from the checkout: the packages import from it
    sys.path.insert(0, str(ROOT))

MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")
ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")  # reST roles (:class:`~a.B`) as code spans
FRAMES = Path(__file__).resolve().parent / "img" / "envs"


def _markdown(doc: str) -> str:
    """A class docstring as Markdown: reST roles as code, ``:param`` lines left out (the tables have them)."""
    kept, in_param = [], False
    for line in inspect.cleandoc(doc or "").splitlines():
        if line.startswith(":param ") or line.startswith(":raises "):
            in_param = True
            continue
        if in_param and (line.startswith(" ") or not line.strip()):
            in_param = bool(line.strip())
            continue
        in_param = False
        kept.append(ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", line))
    return "\n".join(kept).strip()


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def teachers_markdown() -> str:
    """The teacher table (name, paper, reference code, what it learns from, task spaces) and a section per
    teacher: its parameters with defaults and help, and its class docstring (where deviations are written)."""
    from curriculum.registry import TEACHER_SOURCES, TEACHERS, teacher_params

    rows = ["| teacher | paper | reference code | learns from | task spaces |", "|---|---|---|---|---|"]
    sections = []
    for name, cls in TEACHERS.items():
        paper, code = TEACHER_SOURCES[name]
        link = f"[{code.removeprefix('https://github.com/')}]({code})" if code else "-"
        spaces = " or ".join(t.__name__.removesuffix("TaskSpace").lower() for t in cls.supported_spaces)
        rows.append(f"| [`{name}`](#{name}) | {paper} | {link} | {_cell(cls.needs)} | {spaces} |")
        params = teacher_params(cls)
        table = ["| parameter | default | meaning |", "|---|---|---|"]
        table += [f"| `{p.name}` | `{p.default!r}` | {_cell(p.help)} |" for p in params]
        body = "\n".join(table) if params else "No parameters."
        sections.append(f"### {name}\n\n`{cls.__module__}.{cls.__name__}`\n\n{body}\n\n{_markdown(cls.__doc__ or '')}\n")
    return "\n".join(rows) + "\n\n## Each teacher\n\n" + "\n".join(sections)


def environments_markdown() -> str:
    """The environment table from ``describe_env`` (task space, default task, test sets, success rule, easy
    region, gymnasium id) and a frame of each trainable environment at its default task."""
    from environments.registry import ENVIRONMENTS, describe_env

    rows = ["| environment | task space | default task | test sets | success | gymnasium id |", "|---|---|---|---|---|---|"]
    frames = []
    for name, entry in ENVIRONMENTS.items():
        d = describe_env(name)
        sets = ", ".join(f"{n} ({k})" for n, k in d.test_sets.items()) or "-"
        rows.append(
            f"| `{name}` | {_cell(d.task_space)} | {_cell(d.default_task)} | {_cell(sets)} | {_cell(d.success_rule)} "
            f"| {f'`{d.gym_id}`' if d.gym_id else '-'} |"
        )
        if entry.trainable:
            frames.append(f"<figure markdown><img src=\"img/envs/{name}.png\" alt=\"{name}\" width=\"240\">"
                          f"<figcaption><code>{name}</code></figcaption></figure>")
    heading = "\n\n## A frame of each\n\nAt its default task (`cli.py render --env NAME`).\n\n"
    return "\n".join(rows) + heading + "\n".join(frames)


def frame_problems() -> list[str]:
    """Trainable environments without a frame in ``docs/img/envs`` (``make docs-frames`` renders them)."""
    from environments.registry import ENVIRONMENTS

    return [name for name, entry in ENVIRONMENTS.items() if entry.trainable and not (FRAMES / f"{name}.png").is_file()]


def reproductions_markdown() -> str:
    """Every reproduction ``cli.py reproduce`` ships: its claim, source, wall time, command, the committed
    reference's rows on its metric and whether the reference agrees with each claim."""
    from students.experiments.reproduce import REPRODUCTIONS, ROOT as REPO, read_rows

    parts = []
    for name, item in REPRODUCTIONS.items():
        path = REPO / item.reference / ("" if item.reader == "simulate" else "summary.csv")
        rows = read_rows(item, path)
        table = [f"| row | {item.metric} (mean ± std) | seeds |", "|---|---|---|"]
        for label, metrics in rows.items():
            stat = metrics.get(item.metric)
            if stat is not None:
                table.append(f"| {label} | {stat.mean:.1f} ± {stat.std:.1f} | {stat.seeds} |")
        claims = [f"- {claim.text}: **{_agreement(claim.holds(rows))}**" for claim in item.claims]
        parts.append(
            f"## {name}\n\n{item.claim}.\n\n- source: {item.source}\n- wall time: {item.minutes} on 2 cores\n"
            f"- command: `python cli.py reproduce {name}`\n- committed reference: `{item.reference}`\n\n"
            + "\n".join(table) + "\n\nThe reference against the claims:\n\n" + "\n".join(claims) + "\n"
        )
    return "\n".join(parts)


def _agreement(holds: bool | None) -> str:
    return {True: "agrees", False: "disagrees", None: "not measured"}[holds]


def changelog_markdown() -> str:
    """The repository's ``CHANGELOG.md``."""
    return (ROOT / "CHANGELOG.md").read_text()


GENERATED: dict[str, Callable[[], str]] = {
    "changelog": changelog_markdown,
    "teachers": teachers_markdown,
    "environments": environments_markdown,
    "reproductions": reproductions_markdown,
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATED:
            raise KeyError(f"{page.file.src_path}: unknown generated part '{name}'; known: {', '.join(GENERATED)}")
        return GENERATED[name]()

    return MARKER.sub(replace, markdown)


def on_files(files: Any, config: Any) -> Any:
    """Serve the committed references' plots under ``reference/`` (pages show them as ``reference/...png``)."""
    from mkdocs.structure.files import File

    reference = ROOT / "results" / "reference"
    for path in sorted(reference.rglob("*.png")):
        uri = "reference/" + path.relative_to(reference).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
