"""What the embedded server's memory sizing writes, case by case (``plan_memory`` is
pure): an operator's value of either setting kept, pixdex's own followed, values from
before the markers adopted, a write cut between a setting and its marker repaired. The
same logic on a real server, across restarts: ``tests/test_db_memory.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixdex.storage.server_memory import (
    CACHE_SIZE,
    SHARED_BUFFERS,
    machine_memory,
    marker,
    memory_settings,
    plan_memory,
)

GIB = 1024**3
RAM = 24 * GIB
HALF = f"{RAM // 2 // 2**20}MB"  # effective_cache_size on this machine: 12288MB
BIG_INDEX = 2 * GIB  # wants 2688MB of shared_buffers
SB_MARK, CACHE_MARK = marker(SHARED_BUFFERS), marker(CACHE_SIZE)


def test_memory_is_sized_to_the_vector_indexes() -> None:
    assert memory_settings(23 * GIB, 0) == {
        "shared_buffers": "128MB", "effective_cache_size": f"{23 * 1024 // 2}MB"}
    # 2 GiB of graph: all of it plus a quarter for heap pages, above the default floor.
    assert memory_settings(23 * GIB, 2 * GIB)["shared_buffers"] == f"{2560 + 128}MB"
    # Never more than a quarter of the machine.
    assert memory_settings(8 * GIB, 20 * GIB)["shared_buffers"] == "2048MB"


def test_a_fresh_data_folder_gets_both_settings_and_their_markers() -> None:
    # initdb writes shared_buffers = 128MB into postgresql.conf; nothing else is set.
    assert plan_memory({SHARED_BUFFERS: "128MB"}, RAM, 0) == {
        SB_MARK: "128MB", CACHE_SIZE: HALF, CACHE_MARK: HALF}


def test_pixdex_own_values_follow_the_indexes_and_then_stay() -> None:
    ours = {SHARED_BUFFERS: "128MB", SB_MARK: "128MB", CACHE_SIZE: HALF, CACHE_MARK: HALF}
    assert plan_memory(ours, RAM, 0) == {}
    assert plan_memory(ours, RAM, BIG_INDEX) == {SHARED_BUFFERS: "2688MB", SB_MARK: "2688MB"}
    grown = {**ours, SHARED_BUFFERS: "2688MB", SB_MARK: "2688MB"}
    assert plan_memory(grown, RAM, int(BIG_INDEX * 1.2)) == {}  # within the 1.5x band


def test_an_operators_cache_size_stays_while_shared_buffers_is_sized() -> None:
    mine = {SHARED_BUFFERS: "128MB", SB_MARK: "128MB", CACHE_SIZE: "1GB", CACHE_MARK: HALF}
    assert plan_memory(mine, RAM, BIG_INDEX) == {SHARED_BUFFERS: "2688MB", SB_MARK: "2688MB"}


def test_an_operators_shared_buffers_stays_and_the_cache_follows_it() -> None:
    mine = {SHARED_BUFFERS: "20GB", SB_MARK: "128MB", CACHE_SIZE: HALF, CACHE_MARK: HALF}
    # 20 GB of buffers on a 24 GB machine: the cache estimate is at least that.
    assert plan_memory(mine, RAM, BIG_INDEX) == {CACHE_SIZE: "20480MB", CACHE_MARK: "20480MB"}


@pytest.mark.parametrize("default", ["4GB", "4096MB", "524288"])  # pages of 8 kB
def test_postgresqls_default_cache_size_counts_as_unset(default: str) -> None:
    configured = {SHARED_BUFFERS: "128MB", SB_MARK: "128MB", CACHE_SIZE: default,
                  CACHE_MARK: HALF}
    assert plan_memory(configured, RAM, 0) == {CACHE_SIZE: HALF, CACHE_MARK: HALF}


def test_values_from_before_the_markers() -> None:
    # A cache size pixdex wrote before it marked it: the target, adopted with its marker.
    legacy = {SHARED_BUFFERS: "150MB", SB_MARK: "150MB", CACHE_SIZE: "12GB"}
    assert plan_memory(legacy, RAM, 0) == {CACHE_SIZE: HALF, CACHE_MARK: HALF}
    # One that is not the target: an operator's or another machine's; kept either way.
    assert plan_memory({**legacy, CACHE_SIZE: "2GB"}, RAM, 0) == {}
    # shared_buffers before its marker: pixdex's, adopted within the band ...
    assert plan_memory({SHARED_BUFFERS: "150MB", CACHE_SIZE: HALF, CACHE_MARK: HALF},
                       RAM, 0) == {SB_MARK: "150MB"}
    # ... and sized when outside it.
    assert plan_memory({SHARED_BUFFERS: "150MB", CACHE_SIZE: HALF, CACHE_MARK: HALF},
                       RAM, BIG_INDEX) == {SHARED_BUFFERS: "2688MB", SB_MARK: "2688MB"}


def test_a_write_cut_before_its_marker_repairs_itself() -> None:
    # The setting was written, the process died before the marker: not an operator's.
    cut = {SHARED_BUFFERS: "2688MB", SB_MARK: "128MB", CACHE_SIZE: HALF, CACHE_MARK: HALF}
    assert plan_memory(cut, RAM, BIG_INDEX) == {SB_MARK: "2688MB"}


def test_unreadable_values_are_left_alone() -> None:
    odd = {SHARED_BUFFERS: "lots", SB_MARK: "128MB", CACHE_SIZE: "plenty", CACHE_MARK: HALF}
    assert plan_memory(odd, RAM, BIG_INDEX) == {}
    # An unreadable shared_buffers alone: the cache is still pixdex's, sized from the
    # machine (left as it is when it is that already).
    assert plan_memory({**odd, CACHE_SIZE: HALF}, RAM, BIG_INDEX) == {}
    assert plan_memory({**odd, CACHE_SIZE: "4GB"}, RAM, BIG_INDEX) == {
        CACHE_SIZE: HALF, CACHE_MARK: HALF}


def _cgroup(root: Path, membership: str, limits: dict[str, str]) -> Path:
    """A cgroup tree under ``root`` with these limit files, and the process's
    ``/proc/self/cgroup``; the latter's path."""
    for relative, limit in limits.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(f"{limit}\n")
    listed = root / "self-cgroup"
    listed.write_text(membership)
    return listed


def test_the_machines_memory_is_bounded_by_its_cgroups(tmp_path: Path) -> None:
    machine = machine_memory(tmp_path / "none", tmp_path / "none")  # no cgroup files
    assert machine > GIB
    # cgroup v2, a systemd slice limited to 1 GiB around an unlimited scope.
    v2 = tmp_path / "v2"
    listed = _cgroup(v2, "0::/app.slice/run.scope\n", {
        "memory.max": "max", "app.slice/memory.max": str(GIB),
        "app.slice/run.scope/memory.max": "max"})
    assert machine_memory(v2, listed) == GIB
    # cgroup v1 in a container: /proc/self/cgroup names the host's path, the mount shows
    # the container's own cgroup as its root.
    v1 = tmp_path / "v1"
    listed = _cgroup(v1, "4:memory:/docker/0123abcd\n3:cpuset:/\n", {
        "memory/memory.limit_in_bytes": str(2 * GIB)})
    assert machine_memory(v1, listed) == 2 * GIB
    # Unlimited: "max" (v2), a number past the machine's memory (v1).
    free = tmp_path / "free"
    listed = _cgroup(free, "0::/\n4:memory:/\n", {
        "memory.max": "max", "memory/memory.limit_in_bytes": str(machine * 4)})
    assert machine_memory(free, listed) == machine
