"""A pixdex home of a test's own (its own embedded server), and ``pixdex`` commands run
against it the way a user runs them: a process each, configured by PIXDEX_* variables."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pixdex.storage.embedded import stop_server

PIXDEX = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "pixdex"


@contextmanager
def own_home(prefix: str) -> Iterator[Path]:
    # Not under pytest's tmp_path: the unprivileged server user must traverse it (conftest).
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        stop_server(path / "pgdata")
        shutil.rmtree(path, ignore_errors=True)


def pixdex(home: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``pixdex ARGS`` with only ``PIXDEX_HOME`` and ``settings`` (``db_linger_seconds=
    "600"`` is ``PIXDEX_DB_LINGER_SECONDS=600``) of the PIXDEX_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXDEX_")}
    env |= {"PIXDEX_HOME": str(home)}
    env |= {f"PIXDEX_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run([str(PIXDEX), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
