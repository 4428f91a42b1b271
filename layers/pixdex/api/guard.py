"""Checks that run before a request body is even parsed: its size, then who is calling.

powertools validates the body before user middlewares run, so these checks are chained in
front of its validation middleware (:func:`install`): an oversized or unauthenticated
request is refused without decoding its JSON or multipart body.

Access rules:

* ``/docs``, ``/openapi.json``, ``/v1/health`` and the web app (``/``, ``/static/...``)
  are public.
* Otherwise an API key is required (``Authorization: Bearer KEY`` or ``Key KEY``,
  ``X-Api-Key: KEY`` or ``?api_key=KEY``) unless keys are off (``pixdex serve
  --no-auth``): then every request acts in the configured workspace with full rights.
* A ``read`` key may GET and search; anything else answers 403.
* A query parameter or multipart part the route does not declare answers 422 naming it.

Cross-site requests:

* Without keys the server answers only requests addressed to a loopback name
  (``localhost``, ``127.0.0.1``, ``[::1]``), checked first of all: a web page that rebinds
  its own DNS name to 127.0.0.1 sends its own name as ``Host`` and is refused (403).
* After the key: a state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` is
  not this server is refused (403), and its body must be JSON or multipart (415): a page
  elsewhere can send "simple" cross-site requests (``text/plain``, no preflight), never
  these.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.middlewares import BaseMiddlewareHandler, NextMiddleware
from aws_lambda_powertools.event_handler.openapi.params import get_flat_dependant
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from pixdex.api import deps
from pixdex.api.resolver import ThreadSafeHttpResolver
from pixdex.app.service import quota
from pixdex.app.service.keys import Principal, authenticate
from pixdex.config import Settings
from pixdex.errors import (
    BadRequestError,
    InvalidInputError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnsupportedMediaError,
)

# The web app's page and files are public: the page asks for a key and sends it itself.
PUBLIC_PATHS = frozenset({"/docs", "/openapi.json", "/v1/health", "/", "/static/{name}"})
# Searches a read-only key may POST: ours and the vendor dialects' (pixdex.api.dialects).
READ_ONLY_POSTS = frozenset({
    "/v1/search", "/{workspace}/{project}/search", "/v2/searches",
    "/v2/users/{user_id}/apps/{app_id}/searches", "/v1/graphql",
})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_BODY_TYPES = ("application/json", "multipart/form-data")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Query parameters every route takes: the key, for clients that can only put it there.
_EVERY_ROUTE_PARAMS = frozenset({"api_key"})
# Pages whose query string is their own state (the web app's, Swagger UI's), not the API's.
_FREE_QUERY_PATHS = frozenset({"/", "/docs"})
_BOUNDARY = re.compile(r"(?i)multipart/form-data.*?;\s*boundary=(\"[^\"]+\"|[^;\s]+)")
_PART_NAME = re.compile(rb'(?i)content-disposition:[^\r\n]*?\bname="([^"]*)"')


def api_key_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a request carries; ``headers`` looked up by lower-case name."""
    header = headers.get("authorization") or ""
    scheme, _, value = header.strip().partition(" ")
    # "Key KEY" is Clarifai's spelling of the same header.
    if scheme.lower() in ("bearer", "key") and value.strip():
        return value.strip()
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    return query.get("api_key")


def _api_key(app: ThreadSafeHttpResolver) -> str | None:
    event = app.current_event
    return api_key_from(event.headers, event.query_string_parameters or {})


def _host_name(host: str) -> str:
    """``Host`` without its port (``[::1]:8080`` -> ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_host(settings: Settings, event: BaseProxyEvent) -> None:
    host = event.headers.get("host") or ""
    if not settings.require_api_keys and _host_name(host) not in LOOPBACK_HOSTS:
        raise PermissionDeniedError(
            f"this server runs without API keys, so it answers only requests to localhost "
            f"or 127.0.0.1, not to {host[:100]!r} (that is how another web page would "
            "reach it); use the loopback address, or run it with API keys",
            field="host",
        )


def check_cross_site(event: BaseProxyEvent) -> None:
    if event.http_method.upper() not in _STATE_CHANGING:
        return
    host = event.headers.get("host") or ""
    origin = event.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != host.strip().lower():
        raise PermissionDeniedError(
            f"cross-site request refused: it comes from {origin[:100]!r}, not from this "
            "server's own pages", field="origin",
        )
    content_type = (event.headers.get("content-type") or "").lower()
    if event.body and not content_type.startswith(_BODY_TYPES):
        raise UnsupportedMediaError(
            f"send the body as application/json (or multipart/form-data for files), not "
            f"{content_type or 'without a Content-Type'}", field="content-type",
        )


def check_request(app: ThreadSafeHttpResolver) -> None:
    settings = deps.settings()
    event = app.current_event
    check_host(settings, event)
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
    if principal.key_id is not None:
        quota.take(settings, str(principal.key_id))
    # After the key: an anonymous caller learns nothing about what it sent.
    check_cross_site(event)
    method = event.http_method.upper()
    if principal.scope == "read" and method not in _READ_METHODS and path not in READ_ONLY_POSTS:
        raise PermissionDeniedError(
            f"this API key is read-only: it cannot {method} {path}", field="authorization"
        )
    app.context["principal"] = principal
    check_query(route, path, event)
    check_form(route, path, event)


def check_query(route: Any, path: str, event: BaseProxyEvent) -> None:
    """Refuse query parameters the route does not declare: dropping them silently would
    answer a different question than the one asked (e.g. a ``bounding_box`` ignored)."""
    given = set(event.query_string_parameters or {})
    if not given or route is None or path in _FREE_QUERY_PATHS:
        return
    known = _declared(route, "query")
    unknown = sorted(given - known - _EVERY_ROUTE_PARAMS)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise InvalidInputError(
            f"unknown query parameter(s) {', '.join(repr(u) for u in unknown)} for {path}; "
            f"it takes: {allowed}", field=unknown[0],
        )


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


def check_form(route: Any, path: str, event: BaseProxyEvent) -> None:
    """Refuse multipart parts the route does not declare (they would be dropped)."""
    content_type = event.headers.get("content-type") or ""
    boundary = _BOUNDARY.search(content_type)
    if route is None or boundary is None or not event.body:
        return
    body = base64.b64decode(event.body) if event.is_base64_encoded else event.body.encode()
    delimiter = b"--" + boundary.group(1).strip('"').encode()
    names: set[str] = set()
    for start in _occurrences(body, delimiter):
        # Each part's headers follow its delimiter; only they are read, not the bytes.
        head = body[start: start + 2048].split(b"\r\n\r\n", 1)[0]
        found = _PART_NAME.search(head)
        if found is not None:
            names.add(found.group(1).decode("utf-8", "replace"))
    unknown = sorted(names - _declared(route, "body"))
    if unknown:
        allowed = ", ".join(sorted(_declared(route, "body"))) or "none"
        raise InvalidInputError(
            f"unknown form field(s) {', '.join(repr(u) for u in unknown)} for {path}; it "
            f"takes: {allowed}", field=unknown[0],
        )


def _occurrences(data: bytes, needle: bytes) -> list[int]:
    found: list[int] = []
    at = data.find(needle)
    while at >= 0:
        found.append(at + len(needle))
        at = data.find(needle, at + len(needle))
    return found


@lru_cache(maxsize=512)
def _declared(route: Any, where: str) -> frozenset[str]:
    """The query parameters or body fields a route declares (routes live as long as the
    app, so this is worked out once per route)."""
    flat = get_flat_dependant(route.dependant)
    params = flat.query_params if where == "query" else flat.body_params
    return frozenset(param.alias for param in params)
