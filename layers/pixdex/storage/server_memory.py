"""The embedded server's memory, sized to its vector indexes: ``shared_buffers`` (from
the server's next start) and ``effective_cache_size`` (at once).

Each setting pixdex writes carries a marker beside it in ``postgresql.auto.conf``
(``pixdex.sized_<setting>``: the value pixdex wrote last). A configured value that is
neither that, nor PostgreSQL's default, nor what pixdex would write now is an
operator's and stays as it is, one setting at a time; ``ALTER SYSTEM RESET <setting>``
hands it back to pixdex.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import psycopg
from psycopg import sql

_log = logging.getLogger(__name__)

_MB = 1024 * 1024
_FLOOR = 128 * _MB  # PostgreSQL's default shared_buffers
SHARED_BUFFERS, CACHE_SIZE = "shared_buffers", "effective_cache_size"
# What PostgreSQL takes when nothing is configured (initdb writes shared_buffers'
# into postgresql.conf; effective_cache_size's is built in), in megabytes.
_DEFAULT_MB = {SHARED_BUFFERS: 128, CACHE_SIZE: 4096}
# shared_buffers is rewritten only past this factor either way, so that a growing index
# does not rewrite the configuration at every start.
_BAND = 1.5
_CGROUP = Path("/sys/fs/cgroup")
_MEMBERSHIP = Path("/proc/self/cgroup")


def marker(setting: str) -> str:
    """The name of the setting recording what pixdex wrote last for ``setting``."""
    return f"pixdex.sized_{setting}"


SIZED_MARKER = marker(SHARED_BUFFERS)


def memory_settings(ram_bytes: int, index_bytes: int) -> dict[str, str]:
    """shared_buffers / effective_cache_size for this machine and these vector indexes.

    Why: an HNSW search walks its graph at random, so the graph must stay in PostgreSQL's
    own cache; with the default 128 MB a 1M-row index (GBs) was re-read from the OS cache
    and evicted by every filtered scan (the issue-13 tail: 2,487 reads, 70 ms instead of
    17). So: the indexes plus a quarter for heap pages, at least the default, at most a
    quarter of the machine's memory (the rest is the OS cache, the model, the app).
    """
    wanted = max(_FLOOR, int(index_bytes * 1.25) + _FLOOR)
    shared = min(wanted, max(_FLOOR, ram_bytes // 4))
    return {SHARED_BUFFERS: f"{shared // _MB}MB", CACHE_SIZE: _cache_target(ram_bytes, shared)}


def _cache_target(ram_bytes: int, shared_bytes: int) -> str:
    return f"{max(shared_bytes, ram_bytes // 2) // _MB}MB"


def machine_memory(cgroup_root: Path = _CGROUP, membership: Path = _MEMBERSHIP) -> int:
    """The memory this process may use: the machine's, or the lowest memory limit of its
    cgroup and their parents when lower (a quarter of a 64 GB host is no size for a
    server in a container or a systemd slice limited to 4 GB)."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    for directory in _memory_cgroups(cgroup_root, membership):
        for name in ("memory.max", "memory.limit_in_bytes"):  # cgroup v2, v1
            try:
                limit = (directory / name).read_text().strip()
            except OSError:
                continue
            if limit.isdigit():  # "max" when unlimited (v1: a huge number, min() drops it)
                limits.append(int(limit))
    return min(limits)


def _memory_cgroups(root: Path, membership: Path) -> list[Path]:
    """The directories of this process's memory cgroup and its parents, as
    ``/proc/self/cgroup`` names them (``0::/path`` for v2, ``N:memory:/path`` for v1),
    with the mount's own root: inside a container that is the container's cgroup even
    when the listed path is the host's."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    found = [root, root / "memory"]
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers and "memory" not in controllers.split(","):
            continue
        base = root if not controllers else root / "memory"
        here = PurePosixPath(path.strip() or "/")
        found += [base / parent.relative_to("/") for parent in [here, *here.parents]]
    return list(dict.fromkeys(found))


def size_memory(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Size the server's memory to its vector indexes (:func:`memory_settings`: the HNSW
    graphs, and the split vectors' btree that exact searches inside a split read),
    leaving alone each setting an operator chose; the settings changed now (empty:
    none)."""
    rows = conn.execute(
        "SELECT (SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c"
        "  JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw'"
        "  OR c.relname = 'image_embeddings_split_vectors') AS index_bytes,"
        " s.name, s.setting FROM unnest(%s::text[]) AS wanted(name)"
        " LEFT JOIN LATERAL (SELECT name, setting FROM pg_file_settings f"
        "  WHERE f.name = wanted.name ORDER BY seqno DESC LIMIT 1) s ON true",
        ([SHARED_BUFFERS, CACHE_SIZE, marker(SHARED_BUFFERS), marker(CACHE_SIZE)],),
    ).fetchall()
    configured = {str(r[1]): str(r[2]) for r in rows if r[1] is not None}
    changes = plan_memory(configured, machine_memory(), int(rows[0][0]))
    if changes:
        for name, value in changes.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                sql.Identifier(*name.split(".")), sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")
    sized = {name: value for name, value in changes.items() if name not in
             (marker(SHARED_BUFFERS), marker(CACHE_SIZE))}
    if sized:
        _log.info("embedded PostgreSQL memory sized to %s (shared_buffers from its next"
                  " start)", sized)
    return sized


def plan_memory(configured: Mapping[str, str], ram_bytes: int, index_bytes: int
                ) -> dict[str, str]:
    """What to write (settings and their markers) given the ``configured`` values (the
    settings and markers PostgreSQL's files hold), the machine's memory and the HNSW
    indexes' size. Pure, so each case is a unit test."""
    wanted = memory_settings(ram_bytes, index_bytes)
    changes, shared = _plan_shared_buffers(configured, wanted[SHARED_BUFFERS])
    # The cache holds at least what the next start's buffers do (unreadable buffers:
    # memory_settings' own, at most a quarter of the machine, below its half anyway).
    cache = wanted[CACHE_SIZE] if shared is None else _cache_target(ram_bytes, shared * _MB)
    return {**changes, **_plan_cache(configured, cache)}


def _plan_shared_buffers(configured: Mapping[str, str], target: str
                         ) -> tuple[dict[str, str], int | None]:
    """shared_buffers' changes when it is pixdex's to make and outside the band, and the
    megabytes the next start takes (None when the value cannot be read)."""
    value = configured.get(SHARED_BUFFERS)
    ours = configured.get(marker(SHARED_BUFFERS))
    try:
        current = _DEFAULT_MB[SHARED_BUFFERS] if value is None else _megabytes(value)
    except ValueError:  # a spelling PostgreSQL took and this does not: leave it be
        _log.warning("shared_buffers = %r not understood: not sized", value)
        return {}, None
    within = current * _BAND >= _megabytes(target) and _megabytes(target) * _BAND >= current
    # No marker: sized by a version before it (or never), so pixdex's still. A value
    # equal to the target is taken as pixdex's too: a write cut between the setting and
    # its marker repairs itself.
    if not _pixdex_owns(SHARED_BUFFERS, value, ours, target) and ours is not None:
        _log.info("shared_buffers = %s was set by hand: not sized (ALTER SYSTEM RESET "
                  "shared_buffers hands it back to pixdex)", value)
        return {}, current
    if within:
        adopted = value or f"{current}MB"
        return ({} if ours == adopted else {marker(SHARED_BUFFERS): adopted}), current
    return {SHARED_BUFFERS: target, marker(SHARED_BUFFERS): target}, _megabytes(target)


def _plan_cache(configured: Mapping[str, str], target: str) -> dict[str, str]:
    """effective_cache_size's changes unless an operator chose it or it is ``target``
    already. A planner estimate, applied at once: no band."""
    value = configured.get(CACHE_SIZE)
    ours = configured.get(marker(CACHE_SIZE))
    try:
        _megabytes(value or target)
    except ValueError:
        _log.warning("effective_cache_size = %r not understood: not sized", value)
        return {}
    if _pixdex_owns(CACHE_SIZE, value, ours, target):
        same = value is not None and _megabytes(value) == _megabytes(target)
        return {} if same and ours == value else {CACHE_SIZE: target, marker(CACHE_SIZE): target}
    if ours is None:
        _log.info("effective_cache_size = %s was set before pixdex recorded its own, or by"
                  " hand: kept (ALTER SYSTEM RESET effective_cache_size hands it to pixdex)",
                  value)
    else:
        _log.info("effective_cache_size = %s was set by hand: not sized (ALTER SYSTEM"
                  " RESET effective_cache_size hands it back to pixdex)", value)
    return {}


def _pixdex_owns(setting: str, value: str | None, ours: str | None, target: str) -> bool:
    """Whether ``value`` (what PostgreSQL's files hold for ``setting``) is pixdex's to
    change: unset, PostgreSQL's default, what pixdex wrote last, or what it would write."""
    if value is None or value == ours:
        return True
    try:
        megabytes = _megabytes(value)
    except ValueError:
        return False
    return megabytes in (_DEFAULT_MB[setting], _megabytes(target))


_UNITS_MB = {"B": 1 / 2**20, "kB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 * 1024}
_SIZE = re.compile(r"\s*(\d*\.?\d+)\s*([kMGT]?B)?\s*")


def _megabytes(value: str) -> int:
    """``128MB``, ``4GB``, ``.5GB``, ``16384`` (8 kB pages, PostgreSQL's unit for both
    settings); ValueError for anything else."""
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    number, unit = float(match[1]), match[2]
    if unit is None:
        return int(number) * 8 // 1024
    return int(number * _UNITS_MB[unit])
