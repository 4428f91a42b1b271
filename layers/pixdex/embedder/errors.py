"""Errors of the embedder client, and the mapping of the server's error codes back to types.

The server answers a refused request with ``{"error": {"code", "message", "field"}}``; the
client re-raises it as the same :class:`~pixdex.errors.PixdexError` subclass, so a caller
sees the same typed error whether the model runs in-process or behind an endpoint.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from pixdex.errors import (
    ConflictError,
    ImageDecodeError,
    InvalidInputError,
    ModelCapabilityError,
    NotFoundError,
    PayloadTooLargeError,
    PixdexError,
    UnsupportedMediaError,
)

from .protocol import ErrorEnvelope

__all__ = ["EmbedderResponseError", "EmbedderUnavailableError", "error_from_response"]


class EmbedderUnavailableError(PixdexError):
    """The endpoint cannot be reached or failed on its side; retrying later may work."""

    code = "embedder_unavailable"
    http_status = 503


class EmbedderResponseError(PixdexError):
    """The endpoint answered something this client cannot use (wrong model, bad JSON)."""

    code = "embedder_bad_response"
    http_status = 502


_BY_CODE: dict[str, type[PixdexError]] = {
    cls.code: cls
    for cls in (
        ConflictError,
        ImageDecodeError,
        InvalidInputError,
        ModelCapabilityError,
        NotFoundError,
        PayloadTooLargeError,
        UnsupportedMediaError,
    )
}


def error_from_response(status: int, body: bytes, where: str) -> PixdexError:
    """The typed error for a non-200 answer of the inference server at ``where``."""
    try:
        envelope = ErrorEnvelope.model_validate_json(body)
    except (ValidationError, ValueError):
        snippet = body[:200].decode("utf-8", "replace")
        if status >= 500:
            return EmbedderUnavailableError(
                f"embedder at {where} failed (HTTP {status}): {snippet}"
            )
        return EmbedderResponseError(f"embedder at {where} answered HTTP {status}: {snippet}")
    error = envelope.error
    if status >= 500:
        return EmbedderUnavailableError(
            f"embedder at {where} failed: {error.message}", field=error.field
        )
    cls = _BY_CODE.get(error.code, InvalidInputError)
    return cls(error.message, field=error.field)


def describe_json_error(exc: json.JSONDecodeError) -> str:
    return f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
