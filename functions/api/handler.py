"""Lambda "api": API Gateway HTTP API (payload v2) -> the pixdex API app.

Thin on purpose: routing, validation, auth and error mapping live in ``pixdex.api`` (the
Lambda layer), where ``pixdex serve`` runs the same code locally.
"""

from __future__ import annotations

from typing import Any

from pixdex.api.app import app


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
