"""Anchors (uploaded query images) and query images in general.

An anchor is embedded once at upload (its ``bounding_box`` region if one is given) and
can then be searched with repeatedly; a search that names a different box re-embeds that
region from the stored bytes.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import numpy as np

from pixdex.app.search import decode_query_image, embed_query_image
from pixdex.app.service import blobs
from pixdex.app.service.fetch import fetch_url
from pixdex.app.service.schemas import Anchor, Deleted
from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.errors import ConflictError, NotFoundError, UnsupportedMediaError
from pixdex.imaging import DecodedImage, sniff_format
from pixdex.imaging.base64_text import decode_base64
from pixdex.imaging.formats import unsupported_message
from pixdex.models import BoundingBox
from pixdex.storage import anchors as anchor_rows
from pixdex.storage import catalog
from pixdex.storage.connection import connect


def image_bytes(settings: Settings, source: str, field: str) -> bytes:
    """The bytes of a query image given as an http(s) URL or base64 text."""
    if source.startswith(("http://", "https://")):
        return fetch_url(
            source, max_bytes=settings.max_file_bytes, field=field,
            allow_private=settings.url_fetch_allow_private,
        )
    return decode_base64(source, max_bytes=settings.max_file_bytes, field=field)


def decode(
    settings: Settings, data: bytes, field: str, *, box: BoundingBox | None = None,
    model: str | None = None,
) -> DecodedImage:
    """Decode a query image at the size ``model`` needs for ``box`` of it: 415 when not
    an image format at all, 422 when broken."""
    if sniff_format(data) is None:
        raise UnsupportedMediaError(f"{field}: {unsupported_message()}", field=field)
    return decode_query_image(data, box=box, model=model, settings=settings)


def embed(
    settings: Settings, decoded: DecodedImage, box: BoundingBox | None, model: str | None = None
) -> list[float]:
    return embed_query_image(decoded, box=box, model=model, settings=settings)


def create_anchor(
    settings: Settings, workspace: str, data: bytes, box: BoundingBox | None
) -> Anchor:
    decoded = decode(settings, data, "image", box=box)
    vector = embed(settings, decoded, box)
    target = blobs.ref(settings, blobs.anchor_key(uuid4()))
    store_for(target).put(target, data)
    model = get_model(settings.model, settings)
    with connect(settings) as conn:
        catalog.register_model(conn, model.spec)
        row = anchor_rows.insert_anchor(
            conn, workspace, model=model.spec.name, embedding=np.asarray(vector, np.float32),
            storage_key=target.uri, width=decoded.width, height=decoded.height,
            format=decoded.format, box=box,
        )
    return _anchor(row)


def _anchor(row: anchor_rows.AnchorRow) -> Anchor:
    return Anchor(
        anchor_id=row.id, model=row.model, width=row.width, height=row.height,
        format=row.format, bounding_box=row.bounding_box, created=row.created_at,
    )


def get_anchor(settings: Settings, workspace: str, anchor_id: UUID) -> Anchor:
    with connect(settings) as conn:
        return _anchor(anchor_rows.get_anchor(conn, workspace, anchor_id))


def delete_anchor(settings: Settings, workspace: str, anchor_id: UUID) -> Deleted:
    with connect(settings) as conn:
        key = anchor_rows.delete_anchor(conn, workspace, anchor_id)
    blobs.delete_quietly(BlobRef.parse(key))
    return Deleted(id=anchor_id)


def anchor_vector(
    settings: Settings, workspace: str, anchor_id: UUID, box: BoundingBox | None, field: str,
    model: str | None = None,
) -> list[float]:
    """The anchor's vector for a search with ``model`` (default: the server's): the one
    stored at upload when model and region are the same, else the stored image embedded
    again (another model, or another ``box``)."""
    wanted = model or settings.model
    with connect(settings) as conn:
        row = anchor_rows.get_anchor(conn, workspace, anchor_id)
    if row.model == wanted and (box is None or box == row.bounding_box):
        return [float(v) for v in row.embedding]
    ref = BlobRef.parse(row.storage_key)
    try:
        data = store_for(ref).get(ref, max_bytes=settings.max_file_bytes)
    except NotFoundError:
        raise ConflictError(
            f"anchor {anchor_id}'s image is gone from storage, so it cannot be embedded with "
            f"{wanted}; upload the query image again", field=field,
        ) from None
    region = box if box is not None else row.bounding_box
    return embed(settings, decode(settings, data, field, box=region, model=wanted), region, wanted)
