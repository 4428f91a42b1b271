"""The API's domain pieces on their own: keys, request inputs, clusters, field selection."""

from __future__ import annotations

import base64
import uuid

import numpy as np
import pytest
from pydantic import ValidationError

from pixdex.app.service import clusters, keys
from pixdex.app.service.fetch import check_url, fetch_url
from pixdex.app.service.search_schemas import GROUP_THRESHOLDS, SearchRequest, SearchResult
from pixdex.config import Settings
from pixdex.errors import AuthenticationError, InvalidInputError, PayloadTooLargeError
from pixdex.imaging.base64_text import decode_base64
from pixdex.storage.connection import connect


def test_keys_are_stored_hashed_and_checked(settings: Settings) -> None:
    workspace = f"units-{uuid.uuid4().hex[:8]}"
    new = keys.create_key(settings, workspace, scope="read", name="ci")
    assert new.key.startswith(f"pdx_{new.info.prefix}_") and len(new.key) > 50
    with connect(settings) as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE id = %s", (new.info.id,)).fetchone()
    assert row is not None and new.key not in str(row)  # only the prefix and the hash
    principal = keys.authenticate(settings, new.key)
    assert (principal.workspace, principal.scope, principal.key_id) == (
        workspace, "read", new.info.id)
    tampered = new.key[:-1] + ("A" if new.key[-1] != "A" else "B")
    for bad in (tampered, f"pdx_{new.info.prefix}_short", "", None, "Bearer x"):
        with pytest.raises(AuthenticationError):
            keys.authenticate(settings, bad)
    keys.revoke_key(settings, new.info.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        keys.authenticate(settings, new.key)
    assert [k.revoked is not None for k in keys.list_keys(settings, workspace)] == [True]
    with pytest.raises(InvalidInputError):
        keys.create_key(settings, "has/slash")


def test_base64_and_url_inputs() -> None:
    data = bytes(range(256)) * 4
    text = base64.b64encode(data).decode()
    assert decode_base64(text, max_bytes=2048, field="f") == data
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert decode_base64(wrapped, max_bytes=2048, field="f") == data
    assert decode_base64("data:image/jpeg;base64," + text, max_bytes=2048, field="f") == data
    urlsafe = base64.urlsafe_b64encode(data).decode()
    assert decode_base64(urlsafe, max_bytes=2048, field="f") == data
    with pytest.raises(PayloadTooLargeError):
        decode_base64(text, max_bytes=1000, field="f")
    for bad in ("!!!!", "data:image/jpeg,abc", "", "é"):
        with pytest.raises(InvalidInputError):
            decode_base64(bad, max_bytes=2048, field="f")
    for url in ("file:///etc/passwd", "gopher://x", "http://", "http://169.254.169.254/",
                "http://[fe80::1]/", "http://0.0.0.0/", "http://no-such-host.invalid/"):
        with pytest.raises(InvalidInputError):
            check_url(url, "url")
    check_url("http://127.0.0.1:1/x.jpg", "url")  # loopback and private nets are allowed
    # ... unless turned off (the AWS stack does): nothing internal is fetched, not even once.
    for internal in ("http://127.0.0.1:1/x.jpg", "http://10.0.0.8/x.jpg",
                     "http://192.168.1.20/x.jpg", "http://[::1]/x.jpg", "http://localhost/"):
        with pytest.raises(InvalidInputError, match="may not be fetched"):
            check_url(internal, "url", allow_private=False)
        with pytest.raises(InvalidInputError, match="may not be fetched"):
            fetch_url(internal, max_bytes=1024, field="url", allow_private=False)


def test_clusters_follow_thresholds() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=64), rng.normal(size=64)

    def near(v: np.ndarray, cos: float) -> np.ndarray:
        other = rng.normal(size=64)
        other -= other @ v / (v @ v) * v
        unit = v / np.linalg.norm(v)
        return cos * unit + np.sqrt(1 - cos**2) * other / np.linalg.norm(other)

    vectors = {uuid.UUID(int=i): v.astype(np.float32) for i, v in enumerate(
        [a, near(a, 0.99), near(a, 0.92), b, near(b, 0.82)])}
    ranked = [(i, f"n{n}", 1.0 - n / 10) for n, i in enumerate(vectors)]
    ranked.append((uuid.UUID(int=99), "no-vector", 0.1))
    sizes = {level: [c.size for c in clusters.group(ranked, vectors, level)]
             for level in range(5)}
    assert sizes[0] == [2, 1, 1, 1, 1]
    assert sizes[2] == [3, 1, 1, 1]
    assert sizes[4] == [3, 2, 1]
    grouped = clusters.group(ranked, vectors, 4)
    assert grouped[0].id == uuid.UUID(int=0) and grouped[0].score == 1.0
    assert grouped[0].previews[0].thumbnail_url == f"/v1/images/{uuid.UUID(int=0)}/thumbnail"
    assert list(GROUP_THRESHOLDS) == sorted(GROUP_THRESHOLDS, reverse=True)


def test_search_request_and_result_shapes() -> None:
    request = SearchRequest(tag="a, b", objects=["x,y", "z"], fields=["split", "split"])
    assert request.tag_list("tag") == ["a", "b"]
    assert request.tag_list("objects") == ["x", "y", "z"]
    assert request.selected_fields == ("id", "score", "split")
    assert SearchRequest().selected_fields == ("id", "score", "name")
    with pytest.raises(ValidationError, match="unknown field 'colour'"):
        SearchRequest(fields=["colour"])
    with pytest.raises(ValidationError):
        SearchRequest(limit=251)
    result = SearchResult(id=uuid.UUID(int=1), score=0.5, split=None)
    assert result.model_dump(mode="json") == {"id": str(uuid.UUID(int=1)), "score": 0.5,
                                              "split": None}
