"""The embedded PostgreSQL outlives a CLI command by PIXDEX_DB_LINGER_SECONDS, then stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixdex.storage import keeper
from pixdex.storage.embedded import server_running, stop_server
from pixdex.storage.keeper import READY_NAME, try_lock
from tests.server_home import own_home, pixdex


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """One home for the module (its first command runs initdb, seconds on a busy machine)."""
    with own_home("pixdex-linger-") as path:
        yield path


def _pixdex(home: Path, linger: int, *args: str) -> subprocess.CompletedProcess[str]:
    return pixdex(home, *args, db_linger_seconds=str(linger))


def _wait_until_stopped(pgdata: Path, within: float) -> float:
    start = time.monotonic()
    while server_running(pgdata) and time.monotonic() - start < within:
        time.sleep(0.25)
    return time.monotonic() - start


def test_without_linger_the_last_command_stops_it(home: Path) -> None:
    assert _pixdex(home, 0, "datasets").returncode == 0
    assert not server_running(home / "pgdata")


def test_the_server_stays_up_between_commands_then_stops(home: Path) -> None:
    pgdata = home / "pgdata"
    assert _pixdex(home, 6, "datasets").returncode == 0
    assert server_running(pgdata)  # the command is gone; its server is not
    first_pid = (pgdata / "postmaster.pid").read_text().split()[0]
    time.sleep(3)
    status = _pixdex(home, 6, "db", "status")
    assert "running" in status.stdout, status
    assert (pgdata / "postmaster.pid").read_text().split()[0] == first_pid  # the same server
    # Nobody uses it any more: it stops about 6 s after the last command, not before.
    assert server_running(pgdata)
    waited = _wait_until_stopped(pgdata, within=30)
    assert not server_running(pgdata)
    assert waited > 2, waited


def test_db_stop_also_ends_the_keeper(home: Path) -> None:
    pgdata = home / "pgdata"
    assert _pixdex(home, 600, "datasets").returncode == 0
    assert server_running(pgdata)
    assert stop_server(pgdata)  # what `pixdex db stop` runs
    assert not server_running(pgdata)
    # Gone by the time it returns: a command run right after it must start a keeper of
    # its own, not rely on one on its way out.
    lock = try_lock(pgdata)
    assert lock is not None
    os.close(lock)
    time.sleep(1)  # and it did not restart the server on its way out
    assert not server_running(pgdata)


def test_a_bad_linger_setting_is_refused(home: Path) -> None:
    result = _pixdex(home, -1, "db", "status")
    assert result.returncode == 2
    assert "db_linger_seconds" in result.stderr


def _attached_process(home: Path) -> subprocess.Popen[str]:
    """A process using the server the way a command does (registered as one of its users),
    until it is killed."""
    script = (
        "import sys, time; from pathlib import Path;"
        " from pixdex.storage.embedded import ensure_server;"
        " ensure_server(Path(sys.argv[1])); print('attached', flush=True); time.sleep(600)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(home / "pgdata")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "attached"
    return process


def _kill(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL: no exit handler runs, as under the OOM killer
    process.wait(10)


def _users(pgdata: Path) -> list[int]:
    users = json.loads((pgdata / ".handle_pids.json").read_text())
    assert isinstance(users, list)
    return users


def test_a_killed_command_does_not_keep_the_server_up_for_good(home: Path) -> None:
    pgdata = home / "pgdata"
    crashed = _attached_process(home)
    assert _pixdex(home, 2, "datasets").returncode == 0  # a keeper, 2 s of linger
    _kill(crashed)
    assert crashed.pid in _users(pgdata)  # still listed as a user of the server
    assert _wait_until_stopped(pgdata, within=30) < 30
    assert not server_running(pgdata)


def test_without_linger_a_killed_command_is_no_user_either(home: Path) -> None:
    pgdata = home / "pgdata"
    crashed = _attached_process(home)  # starts the server, no keeper
    _kill(crashed)
    assert server_running(pgdata)
    assert _pixdex(home, 0, "datasets").returncode == 0
    assert not server_running(pgdata)  # the last live user stopped it


def test_a_server_restarted_under_its_keeper_still_stops(home: Path) -> None:
    pgdata = home / "pgdata"
    assert _pixdex(home, 600, "datasets").returncode == 0
    keeper_pid = int((pgdata / READY_NAME).read_text())
    first = int((pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(keeper_pid, signal.SIGSTOP)  # it does not see what happens next: deterministic
    try:
        os.kill(first, signal.SIGINT)  # stopped behind pixdex's back (pg_ctl, a crash)
        assert _wait_until_stopped(pgdata, within=30) < 30
        # A command restarts it; the old keeper still holds the lock, so it starts none.
        assert _pixdex(home, 600, "datasets").returncode == 0
        assert server_running(pgdata)
        assert int((pgdata / "postmaster.pid").read_text().split()[0]) != first
    finally:
        os.kill(keeper_pid, signal.SIGCONT)
    # The keeper was no user of the new server, and nobody else uses it: it stops.
    assert _wait_until_stopped(pgdata, within=30) < 30
    assert keeper.wait_for_exit(pgdata, within=10)
