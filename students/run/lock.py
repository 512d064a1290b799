"""A folder lock, so that two processes never write the same run or experiment folder.

``fcntl.flock`` on ``FOLDER/.lock``: the operating system releases it when its process ends, however it ends
(even ``kill -9``), so a lock is never left behind. POSIX only.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from students.run import layout



class FolderInUseError(ValueError):
    """Another process holds the folder's lock."""


class FolderLock:
    """Hold ``folder``'s lock (created with the folder if need be) for the life of a ``with`` block.

    :raises FolderInUseError: another process holds it (the message names its pid)
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / layout.LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            check_unlocked(self.folder)  # raises, naming the holder
            raise FolderInUseError(f"'{self.folder}' is in use by another teachrl process") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def check_unlocked(folder: Path) -> None:
    """Raise :class:`FolderInUseError` when another process holds ``folder``'s lock (writes nothing).

    :raises FolderInUseError: the folder is in use
    """
    path = Path(folder) / layout.LOCK
    if not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        raise FolderInUseError(
            f"'{folder}' is in use by another teachrl process (pid {holder}); wait for it to end or stop it"
        ) from None
    finally:
        os.close(fd)
