"""JSON as vendors' documented examples write it: trailing commas allowed.

Roboflow's own curl example sends ``{"like_image": ..., "limit": 125,}``; its server takes
it, so a client copied from that page must work here too. Only a comma directly before
``}`` or ``]`` (outside strings) is dropped; anything else invalid stays invalid.
"""

from __future__ import annotations

import json
from typing import Any

from pixdex.errors import BadRequestError


def _without_trailing_commas(text: str) -> str:
    out: list[str] = []
    in_string = escaped = False
    pending_comma = False
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if pending_comma and not char.isspace():
            if char not in "}]":
                out.append(",")
            pending_comma = False
        if char == ",":
            pending_comma = True
            continue
        if char == '"':
            in_string = True
        out.append(char)
    if pending_comma:
        out.append(",")
    return "".join(out)


def loads(text: str | None) -> Any:
    """The body's JSON value; an empty body is ``{}``; invalid JSON is a 400."""
    if not text or not text.strip():
        return {}
    try:
        return json.loads(_without_trailing_commas(text))
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"request body is not valid JSON: {exc}", field="body") from None
