"""Keeps the embedded PostgreSQL up for a while after the last pixdex command.

Each ``pixdex`` command is a process of its own, and the embedded server stops when its
last user exits: without this, every command would start PostgreSQL and stop it again
(0.1-0.3 s each way on a small machine). The first command that finds no keeper starts
one, detached: ``python -m pixdex.storage.embedded PGDATA SECONDS`` (:func:`keep`). It
registers itself as one more user of the server and exits once no command has used the
server for SECONDS (``PIXDEX_DB_LINGER_SECONDS``), or at once when the server was stopped by
someone else (``pixdex db stop``, which returns once the keeper is gone: :func:`wait_for_exit`)
or restarted under it; it then stops the server if no live process uses it
(``embedded.keep``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

LOCK_NAME = ".pixdex-keeper.lock"
LAST_USED_NAME = ".pixdex-last-used"
READY_NAME = ".pixdex-keeper.ready"
_HANDOVER_SECONDS = 5.0


def touch_last_used(pgdata: Path) -> None:
    # Also runs at exit: a data folder deleted meanwhile (a throw-away home) is no error.
    with contextlib.suppress(FileNotFoundError):
        (pgdata / LAST_USED_NAME).touch()


def try_lock(pgdata: Path) -> int | None:
    """An exclusive lock on the keeper's lock file (its fd), or None if a keeper holds it."""
    fd = os.open(pgdata / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def start_keeper(pgdata: Path, seconds: int) -> bool:
    """Start a keeper for ``pgdata`` unless one runs; True once it has taken over."""
    fd = try_lock(pgdata)
    if fd is None:
        return False
    os.close(fd)  # released: the keeper takes it (a race only starts a second, short one)
    ready = pgdata / READY_NAME
    ready.unlink(missing_ok=True)
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "pixdex.storage.embedded", str(pgdata), str(seconds)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )
    # Wait until it has registered as a user: a command that exits before that would stop
    # the server it is meant to keep. Paid once per series of commands (~0.3 s).
    deadline = time.monotonic() + _HANDOVER_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        if ready.exists():
            return True
        time.sleep(0.02)
    return False


def wait_for_exit(pgdata: Path, within: float = _HANDOVER_SECONDS) -> bool:
    """Wait until no keeper holds ``pgdata``'s lock; True if none does (now).

    For ``pixdex db stop``: a keeper notices a stopped server at its next poll. A command
    run meanwhile would find its lock held, start no keeper of its own and rely on one
    that is on its way out: its server would then stop with that command instead of
    lingering."""
    deadline = time.monotonic() + within
    while True:
        try:
            fd = try_lock(pgdata)
        except FileNotFoundError:  # no data folder: no keeper
            return True
        if fd is not None:
            os.close(fd)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def mark_ready(pgdata: Path) -> None:
    (pgdata / READY_NAME).write_text(str(os.getpid()))


def idle_for(pgdata: Path, since: float) -> float:
    """Seconds since the last command used the server (or since ``since``)."""
    try:
        last = max(since, (pgdata / LAST_USED_NAME).stat().st_mtime)
    except FileNotFoundError:
        last = since
    return time.time() - last
