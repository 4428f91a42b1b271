"""The embedded PostgreSQL outlives a CLI command by PIXDEX_DB_LINGER_SECONDS, then stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from pixdex.storage import keeper
from pixdex.storage.embedded import server_running, stop_server
from pixdex.storage.keeper import READY_NAME, try_lock
from pixdex.storage.server_users import STARTS_FILE
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


@contextmanager
def _attached_process(home: Path) -> Iterator[subprocess.Popen[str]]:
    """A process using the server the way a command does (registered as one of its users),
    until its standard input closes (it then exits normally) or it is killed."""
    script = (
        "import sys; from pathlib import Path;"
        " from pixdex.storage.embedded import ensure_server;"
        " ensure_server(Path(sys.argv[1])); print('attached', flush=True); sys.stdin.read()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(home / "pgdata")], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "attached"
        yield process
    finally:
        process.kill()
        process.wait(10)


def _kill(process: subprocess.Popen[str], *, reap: bool = True) -> None:
    process.kill()  # SIGKILL: no exit handler runs, as under the OOM killer
    if reap:
        process.wait(10)


def _users(pgdata: Path) -> list[int]:
    users = json.loads((pgdata / ".handle_pids.json").read_text())
    assert isinstance(users, list)
    return users


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def _keeper(pgdata: Path) -> int:
    """The running keeper's pid (checked: a stale file could name another process)."""
    pid = int((pgdata / READY_NAME).read_text())
    assert "pixdex.storage.embedded" in " ".join(psutil.Process(pid).cmdline())
    return pid


@contextmanager
def _paused(pid: int) -> Iterator[None]:
    """``pid`` stopped (SIGSTOP) meanwhile: it sees nothing of what happens, then resumes."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _stop_behind_pixdex(pgdata: Path) -> int:
    """Stop the server the way a crash or ``pg_ctl`` would, not through pixdex."""
    first = _postmaster_pid(pgdata)
    os.kill(first, signal.SIGINT)
    assert _wait_until_stopped(pgdata, within=30) < 30
    return first


def test_a_killed_command_does_not_keep_the_server_up_for_good(home: Path) -> None:
    pgdata = home / "pgdata"
    with _attached_process(home) as crashed:
        assert _pixdex(home, 2, "datasets").returncode == 0  # a keeper, 2 s of linger
        with _paused(_keeper(pgdata)):  # so it cannot leave before the kill
            _kill(crashed)
        assert crashed.pid in _users(pgdata)  # still listed as a user of the server
        assert _wait_until_stopped(pgdata, within=30) < 30


def test_without_linger_a_killed_command_is_no_user_either(home: Path) -> None:
    pgdata = home / "pgdata"
    with _attached_process(home) as crashed:  # starts the server, no keeper
        _kill(crashed)
        assert server_running(pgdata)
        assert _pixdex(home, 0, "datasets").returncode == 0
        assert not server_running(pgdata)  # the last live user stopped it


def test_a_killed_command_not_yet_reaped_is_no_user(home: Path) -> None:
    pgdata = home / "pgdata"
    with _attached_process(home) as crashed:
        _kill(crashed, reap=False)  # a zombie until its parent (this test) waits for it
        deadline = time.monotonic() + 10
        while psutil.Process(crashed.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _pixdex(home, 0, "datasets").returncode == 0
        assert not server_running(pgdata)


def test_a_dead_commands_pid_taken_by_another_process_is_no_user(home: Path) -> None:
    pgdata = home / "pgdata"
    with _attached_process(home) as crashed:  # starts the server, no keeper
        _kill(crashed)
        starts = json.loads((pgdata / STARTS_FILE).read_text())
        assert str(crashed.pid) in starts  # its start time, recorded when it attached
        # The kernel gives its pid to an unrelated process: a running stand-in takes its
        # place in both lists, with the dead command's start time.
        with subprocess.Popen(["sleep", "120"]) as stranger:
            try:
                # (it started seconds or hours before the stranger: 5 s before here)
                starts[str(stranger.pid)] = starts.pop(str(crashed.pid)) - 5
                (pgdata / STARTS_FILE).write_text(json.dumps(starts))
                (pgdata / ".handle_pids.json").write_text(json.dumps([stranger.pid]))
                assert _pixdex(home, 0, "datasets").returncode == 0
                assert not server_running(pgdata)  # the stranger is no user of it
            finally:
                stranger.kill()


def test_a_server_restarted_under_its_keeper_still_stops(home: Path) -> None:
    pgdata = home / "pgdata"
    assert _pixdex(home, 600, "datasets").returncode == 0
    with _paused(_keeper(pgdata)):  # it does not see what happens next: deterministic
        first = _stop_behind_pixdex(pgdata)
        # A command restarts it; the old keeper still holds the lock, so it starts none.
        assert _pixdex(home, 600, "datasets").returncode == 0
        assert server_running(pgdata) and _postmaster_pid(pgdata) != first
    # The keeper was no user of the new server, and nobody else uses it: it stops.
    assert _wait_until_stopped(pgdata, within=30) < 30
    assert keeper.wait_for_exit(pgdata, within=10)


def test_a_server_restarted_under_a_running_command_stops_when_it_exits(home: Path) -> None:
    pgdata = home / "pgdata"
    # The first server is started by another process than the one that outlives it: a
    # command attached to a server it did not start (the keeper's, another command's).
    with _attached_process(home) as starter, _attached_process(home) as running:
        assert starter.stdin is not None
        starter.stdin.close()
        assert starter.wait(30) == 0 and server_running(pgdata)  # still used by `running`
        first = _stop_behind_pixdex(pgdata)
        assert _pixdex(home, 0, "datasets").returncode == 0  # starts a second one
        assert server_running(pgdata) and _postmaster_pid(pgdata) != first
        assert running.stdin is not None
        running.stdin.close()  # exits normally, the last user of the second server
        assert running.wait(30) == 0
        assert _wait_until_stopped(pgdata, within=30) < 30


def test_a_list_of_users_cut_short_by_a_kill_is_reset(home: Path) -> None:
    pgdata = home / "pgdata"
    assert _pixdex(home, 0, "datasets").returncode == 0  # the data folder exists
    assert not server_running(pgdata)
    (pgdata / ".handle_pids.json").write_text("[123")  # a write interrupted by SIGKILL
    result = _pixdex(home, 0, "datasets")
    assert result.returncode == 0, result.stderr
    assert not server_running(pgdata)
    assert _users(pgdata) == []
