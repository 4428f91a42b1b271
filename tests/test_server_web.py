"""The web app's files as the server sends them (the page itself is driven in a real
browser by tests/test_web_*.py): public, security headers, revalidation, nothing else
reachable through /static/. And ``GET /v1/me``, which the page asks first."""

from __future__ import annotations

import uuid

from tests.test_server_support import Api, Keys, add, b64, new_dataset

pytest_plugins = ["tests.test_server_support"]


def test_the_page_and_its_files_are_public_with_security_headers(api: Api) -> None:
    anonymous = api.as_key(None)
    page = anonymous.call("GET", "/")
    assert page.status == 200, page.body[:300]
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert b"<script" in page.body and b'type="module"' in page.body
    script = anonymous.call("GET", "/static/app.js")
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    # Cached by the browser and revalidated: an unchanged file costs a 304 and no body.
    etag = script.headers["etag"]
    assert script.headers["cache-control"] == "no-cache"
    again = anonymous.call("GET", "/static/app.js", headers={"If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")


def test_static_serves_only_the_web_apps_files(api: Api) -> None:
    anonymous = api.as_key(None)
    for path in ("/static/../config.py", "/static/..%2Fconfig.py", "/static/%2e%2e%2fapi",
                 "/static/app.py", "/static/.hidden.js", "/static/nothing.js",
                 "/static/web/__init__.py"):
        reply = anonymous.call("GET", path)
        # 404, or 401 where the path is no route of the app at all (every non-public path
        # needs a key): never a file.
        assert reply.status in (401, 404), (path, reply.status, reply.body[:200])
        assert reply.headers["content-type"] == "application/json", path


def test_me_says_who_the_key_acts_as(api: Api, api_keys: Keys) -> None:
    assert api.ok("GET", "/v1/me") == {
        "workspace": api_keys.workspace_a, "scope": "write", "auth": "key"}
    assert api.as_key(api_keys.a_read).ok("GET", "/v1/me")["scope"] == "read"
    assert api.as_key(None).call("GET", "/v1/me").status == 401
    assert api.as_key("pdx_wrong").call("GET", "/v1/me").status == 401


def test_thumbnails_are_cached_by_the_browser_and_revalidated(
    api: Api, image_files: dict[str, bytes]
) -> None:
    dataset = new_dataset(api, f"thumbs-{uuid.uuid4().hex[:8]}")
    (added,) = add(api, dataset, [{"base64": b64(image_files["rocket.jpg"])}])
    path = f"/v1/images/{added['id']}/thumbnail?size=128"
    first = api.call("GET", path)
    assert first.status == 200 and first.headers["cache-control"] == "private, max-age=3600"
    etag = first.headers["etag"]
    again = api.call("GET", path, headers={"If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")
    other = api.call("GET", f"/v1/images/{added['id']}/thumbnail?size=64",
                     headers={"If-None-Match": etag})
    assert other.status == 200 and other.headers["etag"] != etag  # another size, other bytes
