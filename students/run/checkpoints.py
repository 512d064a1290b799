"""A run folder's checkpoint, written whole beside the current one and swapped in, and the folder's other file
life (atomic JSON, evaluation rows dropped on resume, the stop request): one place for ``run`` and ``distill``.

A save writes ``checkpoint.next/`` completely (``progress.json`` last: the mark of a complete staged
checkpoint), then moves ``checkpoint/`` to ``checkpoint.old/``, ``checkpoint.next/`` to ``checkpoint/``, and
removes ``checkpoint.old/``. A kill at any point leaves some of the three folders; :func:`recover` keeps the
newest complete checkpoint as ``checkpoint/`` and removes the rest, so the next resume (and the next save) finds
one checkpoint and no leftover in its way.
"""

from __future__ import annotations

import errno
import json
import pickle
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from students.run import layout

#: a run folder's outputs, removed when a run that never checkpointed restarts from zero
RUN_OUTPUTS = (
    layout.CONFIG,
    layout.EVAL,
    layout.EVAL_TARGET,
    layout.TB,
    layout.METRICS,
    layout.MODEL,
    layout.TEACHER,
    layout.STAGING,
    layout.PREVIOUS,
)
#: what a checkpoint needs to be resumed from (``progress.json`` is informative, not needed)
REQUIRED = (layout.MODEL, layout.STATE)


#: modules of ``students/`` before it was split into rooms (commit e75580a): checkpoints, teacher files and replay
#: buffers written then pickle their classes under these names, and :func:`load_pickle` reads them under the new ones
MOVED_MODULES = {
    **{f"students.{name}": f"students.loop.{name}" for name in (
        "algorithms", "auxiliary", "callbacks", "curriculum", "curriculum_log", "evaluation", "kickstart", "masked",
        "vec_env")},
    **{f"students.{name}": f"students.run.{name}" for name in ("checkpoints", "distill", "lock")},
    **{f"students.{name}": f"students.experiments.{name}" for name in ("compare", "reproduce", "simulate")},
    **{f"students.{name}": f"students.analysis.{name}" for name in ("report", "stats")},
    "students.run": "students.run.train",  # the flat run.py; nothing pickles the package students.run itself
}


class _MovedUnpickler(pickle.Unpickler):
    """An unpickler that finds a class under its module's name since the split (:data:`MOVED_MODULES`)."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def load_pickle(path: Path) -> Any:
    """The object pickled in ``path``, with classes pickled under a module's old name found under its new one."""
    with Path(path).open("rb") as handle:
        return _MovedUnpickler(handle).load()


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from."""


def is_complete(folder: Path, staged: bool = False) -> bool:
    """Whether ``folder`` holds a checkpoint to resume from (a staged one must also carry its completion mark)."""
    names = (*REQUIRED, layout.PROGRESS) if staged else REQUIRED
    return folder.is_dir() and all((folder / name).is_file() for name in names)


def stage(out: Path) -> Path:
    """An empty ``checkpoint.next/`` to write the next checkpoint into (a leftover one is removed first)."""
    staging = Path(out) / layout.STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def swap_in(out: Path) -> None:
    """Make the staged checkpoint the checkpoint (crash-safe at every point, see the module docstring)."""
    out = Path(out)
    checkpoint, staging, previous = out / layout.CHECKPOINT, out / layout.STAGING, out / layout.PREVIOUS
    if not is_complete(staging, staged=True):
        raise CheckpointError(f"'{staging}' is not a complete checkpoint (no {layout.PROGRESS}); nothing swapped in")
    shutil.rmtree(previous, ignore_errors=True)  # a leftover of an earlier kill would block the rename
    if checkpoint.exists():
        checkpoint.rename(previous)
    staging.rename(checkpoint)
    shutil.rmtree(previous, ignore_errors=True)


def recover(out: Path) -> bool:
    """Keep the newest complete checkpoint of ``out`` as ``checkpoint/`` and remove the leftovers of a save cut
    short; return whether a checkpoint to resume from exists.

    A complete ``checkpoint.next`` is the newest (it exists only while a save is in progress); then
    ``checkpoint``; then ``checkpoint.old`` (the previous one, moved aside by a swap that stopped half-way).
    """
    out = Path(out)
    checkpoint, staging, previous = out / layout.CHECKPOINT, out / layout.STAGING, out / layout.PREVIOUS
    if is_complete(staging, staged=True):
        shutil.rmtree(checkpoint, ignore_errors=True)
        staging.rename(checkpoint)
    shutil.rmtree(staging, ignore_errors=True)
    if not is_complete(checkpoint) and is_complete(previous):
        shutil.rmtree(checkpoint, ignore_errors=True)
        previous.rename(checkpoint)
    shutil.rmtree(previous, ignore_errors=True)
    return is_complete(checkpoint)


def saved_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds a checkpoint to resume from, counting the ones :func:`recover` would keep (nothing
    is changed: this is for the checks made before the folder is locked)."""
    out = Path(out)
    return (
        is_complete(out / layout.STAGING, staged=True)
        or is_complete(out / layout.CHECKPOINT)
        or is_complete(out / layout.PREVIOUS)
    )


def has_progress(out: Path) -> bool:
    """Whether a run folder holds anything a fresh start would destroy: a checkpoint (or one a kill mid-save
    left beside it), a checkpoint folder at all, or final results."""
    out = Path(out)
    return saved_checkpoint(out) or (out / layout.CHECKPOINT).exists() or (out / layout.METRICS).exists()


def resume_problem(out: Path) -> str | None:
    """Why ``out/checkpoint`` cannot be resumed from (one line naming what is missing), or ``None``."""
    checkpoint = Path(out) / layout.CHECKPOINT
    missing = [name for name in REQUIRED if not (checkpoint / name).is_file()]
    if not missing:
        return None
    return (
        f"'{checkpoint}' lacks {' and '.join(missing)}, so it cannot be resumed; restart the run in another --out "
        "(or delete the folder)"
    )


def remove_outputs(out: Path, also: tuple[str, ...] = ()) -> None:
    """Remove a run folder's outputs (:data:`RUN_OUTPUTS` and ``also``): a run that died before its first
    checkpoint, restarting from step 0."""
    for name in (*RUN_OUTPUTS, *also):
        target = Path(out) / name
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)


def disk_full(exc: BaseException, folder: Path) -> str | None:
    """One line for a write that ran out of space in a run folder (what was being written, whether a checkpoint
    survives, the resume command), or ``None`` for any other error."""
    if not (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
        return None
    where = f" while writing {exc.filename}" if exc.filename else ""
    saved = saved_checkpoint(folder)
    kept = "the last complete checkpoint survives" if saved else "no checkpoint had been saved yet"
    again = f"--resume --out {folder}" if saved else f"the same command (it restarts from step 0 in {folder})"
    return f"disk full{where}: {kept}; free space, then continue with {again}"


def damaged(path: Path, exc: Exception, advice: str = "it cannot be resumed: restart the run in another --out") -> str:
    """One line for a checkpoint or run file that cannot be read (truncated, empty, garbage)."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return f"'{path}' is damaged or unreadable ({reason[:120]}); {advice}"


class StopRequest:
    """While active (in the main thread), the first SIGINT or SIGTERM asks training to stop at the next rollout
    boundary with a checkpoint; a second SIGINT stops at once. The previous handlers are restored afterwards."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON through a side file swapped in: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)  # atomic: a crash never leaves half a file


def truncate_rows_after(path: Path, timesteps: int) -> None:
    """Drop the rows of an evaluation CSV (first column: the step) written after the checkpoint being resumed (the
    resumed run writes them again)."""
    if not path.exists():
        return
    lines = path.read_bytes().splitlines(keepends=True)  # bytes: the line endings stay as written
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(b",", 1)[0]) <= timesteps]
    if len(kept) != len(lines):
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(kept))
        tmp.replace(path)


def write_outputs(out: Path, model: Any, teacher_state: Any, metrics: dict[str, Any]) -> None:
    """A finished run's outputs, ``model.zip``, ``teacher.pkl`` and ``metrics.json`` (last), each written beside
    and swapped in whole: a crash leaves the previous one or the new one (an extended run keeps its earlier
    results until then)."""
    model.save(out / "model.next.zip")
    (out / "model.next.zip").replace(out / layout.MODEL)
    with (out / "teacher.pkl.tmp").open("wb") as handle:
        pickle.dump(teacher_state, handle)
    (out / "teacher.pkl.tmp").replace(out / layout.TEACHER)
    write_json(out / layout.METRICS, metrics)
