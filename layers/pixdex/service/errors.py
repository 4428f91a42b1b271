"""Errors the HTTP API adds to :mod:`pixdex.errors` (same shape: code, status, field)."""

from __future__ import annotations

from pixdex.errors import PixdexError


class AuthenticationError(PixdexError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthorized"
    http_status = 401


class PermissionDeniedError(PixdexError):
    """The key is valid but may not do this (a read-only key writing)."""

    code = "forbidden"
    http_status = 403


class BadRequestError(PixdexError):
    """The request itself is malformed (not JSON, broken multipart, ...)."""

    code = "bad_request"
    http_status = 400
