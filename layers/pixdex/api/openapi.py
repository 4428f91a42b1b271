"""OpenAPI helpers shared by the routers: documented error answers, binary bodies."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from pixdex.app.service.schemas import ErrorResponse

_ERROR_TEXT = {
    400: "Malformed request (not JSON, broken multipart, or a capability the model lacks)",
    401: "Missing, unknown or revoked API key",
    403: "The API key may not do this (read-only key)",
    404: "No such resource in this workspace",
    409: "Conflict (the dataset or image is not ready, or the name is taken)",
    413: "Request, image or batch too large",
    415: "Unsupported Content-Type or not an image format",
    422: "Invalid input: the message names the field",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def responses(
    ok: str, *errors: int, status: int = 200, content: dict[str, Any] | None = None
) -> dict[int, OpenAPIResponse]:
    """The success answer (schema from the return annotation unless ``content``) plus
    401 and 422 and the given error statuses, all with the error body schema."""
    documented: dict[int, OpenAPIResponse] = {status: {"description": ok}}
    if content is not None:
        documented[status]["content"] = content
    for code in sorted({401, 422, *errors}):
        documented[code] = {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"model": ErrorResponse}},
        }
    return documented


def binary_response(
    data: bytes, content_type: str, filename: str, *, if_none_match: str | None = None
) -> Response[str]:
    """Bytes as a base64 body flagged ``isBase64Encoded`` (what API Gateway decodes), with
    an ETag: a browser revalidating a thumbnail it holds gets a 304 and no body."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:100] or "image"
    etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
    headers = {
        "Content-Disposition": f'inline; filename="{safe}"',
        "Cache-Control": "private, max-age=3600",
        "ETag": etag,
    }
    if if_none_match is not None and etag in if_none_match:
        return Response(status_code=304, headers=headers, body="")
    response: Response[str] = Response(
        status_code=200,
        content_type=content_type,
        body=base64.b64encode(data).decode("ascii"),
        headers=headers,
    )
    response.base64_encoded = True
    return response


def new_router() -> Router:
    return Router()  # type: ignore[no-untyped-call]  # powertools leaves __init__ unannotated
