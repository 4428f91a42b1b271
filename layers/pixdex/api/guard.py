"""Checks that run before a request body is even parsed: its size, then who is calling.

powertools validates the body before user middlewares run, so these checks are chained in
front of its validation middleware (:func:`install`): an oversized or unauthenticated
request is refused without decoding its JSON or multipart body.

Access rules:

* ``/docs``, ``/openapi.json``, ``/v1/health`` and the web app (``/``, ``/static/...``)
  are public.
* Otherwise an API key is required (``Authorization: Bearer KEY``, ``X-Api-Key: KEY`` or
  ``?api_key=KEY``) unless keys are off (``pixdex serve --no-auth``): then every request
  acts in the configured workspace with full rights.
* A ``read`` key may GET and search; anything else answers 403.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.middlewares import BaseMiddlewareHandler, NextMiddleware

from pixdex.api import deps
from pixdex.api.resolver import ThreadSafeHttpResolver
from pixdex.errors import BadRequestError, PayloadTooLargeError, PermissionDeniedError
from pixdex.service.keys import Principal, authenticate

# The web app's page and files are public: the page asks for a key and sends it itself.
PUBLIC_PATHS = frozenset({"/docs", "/openapi.json", "/v1/health", "/", "/static/{name}"})
READ_ONLY_POSTS = frozenset({"/v1/search"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _api_key(app: ThreadSafeHttpResolver) -> str | None:
    event = app.current_event
    header = event.headers.get("authorization") or ""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if event.headers.get("x-api-key"):
        return event.headers["x-api-key"].strip()
    return (event.query_string_parameters or {}).get("api_key")


def check_request(app: ThreadSafeHttpResolver) -> None:
    settings = deps.settings()
    event = app.current_event
    body = event.body or ""
    # Base64 text is 4/3 of the bytes it encodes.
    size = len(body) * 3 // 4 if event.is_base64_encoded else len(body)
    if size > settings.max_request_bytes:
        raise PayloadTooLargeError(
            f"request body is about {size:,} bytes; the limit is {settings.max_request_bytes:,}"
            " (send fewer or smaller images per call)", field="body",
        )
    content_type = (event.headers.get("content-type") or "").lower()
    if content_type.startswith("multipart/form-data") and "boundary=" not in content_type:
        raise BadRequestError("multipart/form-data without a boundary", field="content-type")
    route = app.context.get("_route")
    path = route.openapi_path if route is not None else event.path
    if path in PUBLIC_PATHS:
        return
    if settings.require_api_keys:
        principal = authenticate(settings, _api_key(app))
    else:
        principal = Principal(settings.workspace, "write", None)
    method = event.http_method.upper()
    if principal.scope == "read" and method not in _READ_METHODS and path not in READ_ONLY_POSTS:
        raise PermissionDeniedError(
            f"this API key is read-only: it cannot {method} {path}", field="authorization"
        )
    app.context["principal"] = principal


class _GuardThenValidate(BaseMiddlewareHandler):  # type: ignore[type-arg]
    def __init__(self, validation: Any) -> None:
        self._validation = validation

    def handler(self, app: Any, next_middleware: NextMiddleware) -> Response:  # type: ignore[type-arg]
        check_request(app)
        if self._validation is None:
            return next_middleware(app)
        response: Response = self._validation.handler(app, next_middleware)  # type: ignore[type-arg]
        return response


def install(app: ThreadSafeHttpResolver) -> None:
    """Put the checks in front of powertools' request validation for every route."""
    validation = getattr(app, "_request_validation_middleware", None)
    app._request_validation_middleware = _GuardThenValidate(validation)  # type: ignore[assignment]
