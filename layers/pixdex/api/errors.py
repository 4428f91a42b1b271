"""The one place where errors become HTTP answers.

Every error body is ``{"error": {"code", "message", "field"}}``:

* :class:`pixdex.errors.PixdexError` subclasses carry their own status and code
  (400 / 401 / 403 / 404 / 409 / 413 / 415 / 422 / 503);
* request validation (powertools / pydantic): 422 ``invalid_input`` naming the field,
  except a body that is not JSON or not parseable multipart: 400 ``bad_request``;
* an unsupported Content-Type: 415; an unknown route: 404;
* anything else: 500 ``internal`` with no detail (it is logged with its traceback);
* 503s carry ``Retry-After``; a database that cannot be reached answers a generic text
  (libpq's names hosts and users), its detail only in the log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import ValidationError

from pixdex.api.resolver import ThreadSafeHttpResolver
from pixdex.errors import DatabaseUnavailableError, PixdexError, RateLimitedError

log = logging.getLogger("pixdex.api")
_LOCATIONS = ("body", "query", "path", "header", "cookie", "response")


# Overloaded or briefly unreachable: a client backs off this long before retrying.
RETRY_AFTER_SECONDS = 5


def error_response(
    status: int, code: str, message: str, field: str | None = None, *, retry_after: int = 1
) -> Response[str]:
    headers: dict[str, str] | None = None
    if status == 429:
        headers = {"Retry-After": str(retry_after)}
    elif status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="pixdex"'}
    elif status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps({"error": {"code": code, "message": message, "field": field}}),
        headers=headers,
    )


def _field(loc: Any) -> str | None:
    # Only the leading location ("body", "query"...): a body field may be called "query".
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or None


def _message(error: dict[str, Any]) -> str:
    text = str(error.get("msg", "invalid value"))
    return text.removeprefix("Value error, ")


def validation_response(errors: list[dict[str, Any]]) -> Response[str]:
    first: dict[str, Any] = (
        errors[0] if errors else {"loc": (), "type": "invalid", "msg": "invalid request"}
    )
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        context: dict[str, Any] = first.get("ctx") or {}
        detail = context.get("error", "")
        return error_response(400, "bad_request", f"request body is not valid JSON: {detail}",
                              "body")
    if kind == "multipart_invalid":
        return error_response(400, "bad_request", "request body is not valid multipart/form-data",
                              "body")
    field = _field(first.get("loc", ()))
    message = _message(first)
    if kind == "missing":
        message = "this field is required"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return error_response(422, "invalid_input", f"{field or 'request'}: {message}{more}", field)


def register(app: ThreadSafeHttpResolver) -> None:
    def _pixdex(exc: PixdexError) -> Response[str]:
        if exc.http_status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        if isinstance(exc, DatabaseUnavailableError):
            # libpq's text names hosts, ports and users: the log has it, the caller not.
            return error_response(
                503, exc.code, "the database is unavailable right now; retry in a few seconds"
            )
        if isinstance(exc, RateLimitedError):
            return error_response(429, exc.code, exc.message, exc.field,
                                  retry_after=exc.retry_after)
        return error_response(exc.http_status, exc.code, exc.message, exc.field)

    def _invalid(exc: RequestValidationError) -> Response[str]:
        return validation_response(list(exc.errors()))

    def _model_invalid(exc: ValidationError) -> Response[str]:
        return validation_response([dict(e) for e in exc.errors()])

    def _media(exc: RequestUnsupportedContentType) -> Response[str]:
        content_type = app.current_event.headers.get("content-type", "")
        return error_response(
            415, "unsupported_media",
            f"unsupported Content-Type {content_type!r}: send application/json "
            "(or multipart/form-data where a route takes file uploads)", "content-type",
        )

    def _no_route(exc: RouteNotFound) -> Response[str]:
        event = app.current_event
        return error_response(
            404, "not_found",
            f"no route {event.http_method} {event.path}; the API is described at /docs", None,
        )

    def _service(exc: ServiceError) -> Response[str]:
        return error_response(exc.status_code, "error", str(exc.msg))

    def _unexpected(exc: Exception) -> Response[str]:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal", "internal error; it has been logged")

    # Registered by call, not as decorators: powertools' decorator is untyped.
    handlers: list[tuple[type[Exception], Any]] = [
        (PixdexError, _pixdex), (RequestValidationError, _invalid),
        (ValidationError, _model_invalid), (RequestUnsupportedContentType, _media),
        (RouteNotFound, _no_route), (ServiceError, _service), (Exception, _unexpected),
    ]
    for exc_class, function in handlers:
        app.exception_handler(exc_class)(function)
