"""The web app: ``GET /`` (the page) and ``GET /static/<name>`` (its scripts and styles).

Public (the page asks for a key itself and sends it as a header; the key is never in a
URL). Every answer carries the page's security headers: a Content-Security-Policy that
allows only this origin's scripts and styles (no inline script, no eval), nosniff, no
referrer, no framing. ``Cache-Control: no-cache`` with an ETag: the browser keeps the
files and revalidates them with a 304, so a new release is picked up at once.
"""

from __future__ import annotations

import base64

from aws_lambda_powertools.event_handler import Response

from pixdex.api.openapi import new_router
from pixdex.web import Asset, asset

router = new_router()

# Thumbnails and originals are fetched by script (with the key) and shown as blob: URLs;
# originals in S3 come from presigned https: links.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' blob: data: https: http:; connect-src 'self' https: http:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _serve(found: Asset) -> Response[str]:
    headers = {**SECURITY_HEADERS, "ETag": found.etag, "Cache-Control": "no-cache"}
    if found.etag in (router.current_event.headers.get("if-none-match") or ""):
        return Response(status_code=304, headers=headers, body="")
    # Base64 for every file: API Gateway decodes it, and images are not UTF-8.
    response: Response[str] = Response(
        status_code=200, content_type=found.content_type, headers=headers,
        body=base64.b64encode(found.data).decode("ascii"),
    )
    response.base64_encoded = True
    return response


@router.get("/", include_in_schema=False)
def page() -> Response[str]:
    return _serve(asset("index.html"))


@router.get("/static/<name>", include_in_schema=False)
def static(name: str) -> Response[str]:
    return _serve(asset(name))
