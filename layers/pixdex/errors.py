"""Typed domain errors. One place (the API layer / CLI) maps them to HTTP statuses or exits.

Every error carries a message that tells the user what to fix, and optionally the
offending input ``field``.
"""

from __future__ import annotations


class PixdexError(Exception):
    """Base class. ``code`` is a stable machine-readable identifier."""

    code = "pixdex_error"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInputError(PixdexError):
    code = "invalid_input"
    http_status = 422


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


class NotFoundError(PixdexError):
    code = "not_found"
    http_status = 404


class ConflictError(PixdexError):
    code = "conflict"
    http_status = 409


class NoFileError(ConflictError):
    """A file was asked of an image that has none (imported with its vector)."""

    code = "no_file"

    def __init__(self, image_id: object, *, wanted: str = "file",
                 field: str | None = "image_id") -> None:
        super().__init__(
            f"image {image_id} has no {wanted}: it was imported as a vector, without a file",
            field=field,
        )


class PayloadTooLargeError(PixdexError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaError(PixdexError):
    code = "unsupported_media"
    http_status = 415


class ImageDecodeError(PixdexError):
    """The bytes are not a usable image (corrupt, truncated, empty, bomb, unknown format)."""

    code = "image_decode_failed"
    http_status = 422


class ModelCapabilityError(PixdexError):
    """The model cannot do what was asked (e.g. text prompts without a text encoder)."""

    code = "model_capability"
    http_status = 400


class RateLimitedError(PixdexError):
    """An API key sent more requests than its quota allows; retry after ``retry_after``."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class DatabaseUnavailableError(PixdexError):
    code = "database_unavailable"
    http_status = 503


class ServiceUnavailableError(PixdexError):
    """A service pixdex depends on (the indexing queue) did not take the request."""

    code = "service_unavailable"
    http_status = 503


class SearchTimeoutError(ServiceUnavailableError):
    """A query ran past its statement deadline and was cancelled."""

    code = "search_timeout"
