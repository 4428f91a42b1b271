"""``pixdex db``: the embedded PostgreSQL's state, stopping it, or its URL.

Its own module: managing the server needs none of the catalog, models or pool that the
rest of :mod:`pixdex.app.admin` loads, and ``pixdex db status`` should answer at once.
"""

from __future__ import annotations

from typing import Literal

from pixdex.config import Settings
from pixdex.storage import embedded

__all__ = ["database"]


def database(settings: Settings, action: Literal["status", "stop", "url"]) -> str:
    """The embedded PostgreSQL: its state, stopping it, or its URL (starting it)."""
    if settings.database_url is not None:
        return "using PIXDEX_DATABASE_URL: the embedded server is not managed"
    if action == "stop":
        return "stopped" if embedded.stop_server(settings.pgdata_dir) else "not running"
    if action == "url":
        return embedded.ensure_server(
            settings.pgdata_dir, linger_seconds=settings.db_linger_seconds,
            autoprewarm=settings.db_autoprewarm,
        )
    state = "running" if embedded.server_running(settings.pgdata_dir) else "stopped"
    return f"embedded PostgreSQL in {settings.pgdata_dir}: {state}"
