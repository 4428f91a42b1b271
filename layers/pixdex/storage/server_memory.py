"""The embedded server's memory, sized to its vector indexes: ``shared_buffers`` (from
the server's next start) and ``effective_cache_size`` (at once).

Each setting pixdex writes carries a marker beside it in ``postgresql.auto.conf``
(``pixdex.sized_<setting>``: the value pixdex wrote last). A configured value that is
neither that nor PostgreSQL's default is an operator's and stays as it is, one setting
at a time; ``ALTER SYSTEM RESET <setting>`` hands it back to pixdex.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import psycopg
from psycopg import sql

_log = logging.getLogger(__name__)

_MB = 1024 * 1024
_FLOOR = 128 * _MB  # PostgreSQL's default shared_buffers
SHARED_BUFFERS, CACHE_SIZE = "shared_buffers", "effective_cache_size"
# What PostgreSQL takes when nothing is configured (initdb writes shared_buffers'
# into postgresql.conf; effective_cache_size's is built in).
_DEFAULTS = {SHARED_BUFFERS: "128MB", CACHE_SIZE: "4GB"}
# shared_buffers is rewritten only past this factor either way, so that a growing index
# does not rewrite the configuration at every start.
_BAND = 1.5


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
    return {SHARED_BUFFERS: f"{shared // _MB}MB", CACHE_SIZE: _cache_size(ram_bytes, shared)}


def _cache_size(ram_bytes: int, shared_bytes: int) -> str:
    return f"{max(shared_bytes, ram_bytes // 2) // _MB}MB"


def size_memory(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Size the server's memory to its vector indexes (:func:`memory_settings`), leaving
    alone each setting an operator chose; the settings changed now (empty: none)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    rows = conn.execute(
        "SELECT (SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c"
        "  JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'hnsw') AS index_bytes,"
        " s.name, s.setting FROM unnest(%s::text[]) AS wanted(name)"
        " LEFT JOIN LATERAL (SELECT name, setting FROM pg_file_settings f"
        "  WHERE f.name = wanted.name ORDER BY seqno DESC LIMIT 1) s ON true",
        ([SHARED_BUFFERS, CACHE_SIZE, marker(SHARED_BUFFERS), marker(CACHE_SIZE)],),
    ).fetchall()
    index_bytes = int(rows[0][0])
    configured = {str(r[1]): str(r[2]) for r in rows if r[1] is not None}
    wanted = memory_settings(ram, index_bytes)
    changes: dict[str, str] = {}
    shared = _shared_buffers(configured, wanted[SHARED_BUFFERS], changes)
    if shared is not None:  # the cache holds at least what the next start's buffers do
        wanted[CACHE_SIZE] = _cache_size(ram, shared * _MB)
    _cache(configured, wanted[CACHE_SIZE], changes)
    if changes:
        _alter_system(conn, changes)
    sized = {name: value for name, value in changes.items() if not name.startswith("pixdex.")}
    if sized:
        _log.info("embedded PostgreSQL memory sized to %s (shared_buffers from its next"
                  " start)", sized)
    return sized


def _shared_buffers(configured: dict[str, str], target: str, changes: dict[str, str]
                    ) -> int | None:
    """Add shared_buffers' change to ``changes`` when it is pixdex's to make and outside
    the band; the megabytes the next start takes, None when they cannot be read."""
    value = configured.get(SHARED_BUFFERS, _DEFAULTS[SHARED_BUFFERS])
    ours = configured.get(marker(SHARED_BUFFERS))
    try:
        current = _megabytes(value)
    except ValueError:  # a spelling PostgreSQL took and this does not: leave it be
        _log.warning("shared_buffers = %r not understood: not sized", value)
        return None
    # Without a marker it is pixdex's still: versions before the marker sized it too.
    if ours is not None and value not in (ours, _DEFAULTS[SHARED_BUFFERS]):
        _log.info("shared_buffers = %s was set by hand: not sized (ALTER SYSTEM RESET "
                  "shared_buffers hands it back to pixdex)", value)
        return current
    if current * _BAND >= _megabytes(target) and _megabytes(target) * _BAND >= current:
        if ours is None:  # sized by a version before the marker: adopted as it is
            changes[marker(SHARED_BUFFERS)] = value
        return current
    changes.update({SHARED_BUFFERS: target, marker(SHARED_BUFFERS): target})
    return _megabytes(target)


def _cache(configured: dict[str, str], target: str, changes: dict[str, str]) -> None:
    """Add effective_cache_size's change to ``changes`` unless an operator chose it or
    it is ``target`` already. A planner estimate, applied at once: no band."""
    value = configured.get(CACHE_SIZE)
    ours = configured.get(marker(CACHE_SIZE))
    try:
        current = None if value is None else _megabytes(value)
    except ValueError:
        _log.warning("effective_cache_size = %r not understood: not sized", value)
        return
    if value in (None, ours, _DEFAULTS[CACHE_SIZE]):
        if value != target or ours != target:
            changes.update({CACHE_SIZE: target, marker(CACHE_SIZE): target})
    elif ours is None and current == _megabytes(target):
        # Versions before this marker wrote the same value: adopted as it is.
        changes[marker(CACHE_SIZE)] = str(value)
    else:  # set by hand, or (before the marker) for a machine with other memory
        _log.info("effective_cache_size = %s was set by hand: not sized (ALTER SYSTEM"
                  " RESET effective_cache_size hands it back to pixdex)", value)


def _alter_system(conn: psycopg.Connection[Any], settings: dict[str, str]) -> None:
    for name, value in settings.items():
        conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(
            sql.Identifier(*name.split(".")), sql.Literal(value)))
    conn.execute("SELECT pg_reload_conf()")


_UNITS_MB = {"B": 1 / 2**20, "kB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1024 * 1024}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kMGT]?B)?\s*")


def _megabytes(value: str) -> int:
    """``128MB``, ``4GB``, ``16384`` (8 kB pages, PostgreSQL's unit for both settings);
    ValueError for anything else."""
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    number, unit = float(match[1]), match[2]
    if unit is None:
        return int(number) * 8 // 1024
    return int(number * _UNITS_MB[unit])
