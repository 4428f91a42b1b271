"""pixdex: self-hostable image search (embeddings + auto-tags in PostgreSQL/pgvector)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from pixdex.client import Client


def __getattr__(name: str) -> Any:
    # Lazy: importing pixdex (e.g. in the Lambda layer) should not import the client.
    if name == "Client":
        from pixdex.client import Client

        return Client
    raise AttributeError(f"module 'pixdex' has no attribute {name!r}")
