"""The real ``pixdex serve`` and ``pixdex keys`` executables, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_server_support import Api, b64, wait_indexed

PIXDEX = shutil.which("pixdex", path=str(Path(sys.executable).parent)) or "pixdex"

pytest_plugins = ["tests.test_server_support"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIXDEX, *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def local_server(cli_env: dict[str, str]) -> Iterator[tuple[Api, subprocess.Popen[str]]]:
    """``pixdex serve --no-auth`` with small limits, in its own process."""
    port = _free_port()
    env = {**cli_env, "PIXDEX_WORKSPACE": f"local-{os.getpid()}",
           "PIXDEX_MAX_REQUEST_BYTES": str(300_000), "PIXDEX_MAX_FILE_BYTES": str(40_000)}
    process = subprocess.Popen([PIXDEX, "serve", "--no-auth", "--port", str(port), "--quiet"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    api = Api(f"http://127.0.0.1:{port}", None)
    deadline = time.monotonic() + 120
    while True:
        try:
            if api.call("GET", "/v1/health").status == 200:
                break
        except OSError:
            pass
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "pixdex serve did not come up"
        time.sleep(0.3)
    yield api, process
    process.send_signal(signal.SIGTERM)  # stops as cleanly as Ctrl-C
    assert process.wait(timeout=30) == 0


def test_serve_without_keys_and_with_small_limits(
    local_server: tuple[Api, subprocess.Popen[str]], image_files: dict[str, bytes]
) -> None:
    api, process = local_server
    dataset = api.ok("POST", "/v1/datasets", {"name": "local"})
    small = image_files["chelsea.jpg"]
    assert len(small) < 40_000 < len(image_files["astronaut.jpg"])
    added = api.ok("POST", f"/v1/datasets/{dataset['id']}/images",
                   {"images": [{"base64": b64(small), "name": "cat.jpg"}]})
    assert added["images"][0]["status"] == "pending"  # the server indexes it after answering
    (cat,) = wait_indexed(api, added["images"])
    assert cat["status"] == "indexed"
    found = api.ok("POST", "/v1/search", {"in_dataset": "local", "like_image": cat["id"]})
    assert found["total"] == 0  # the only image is left out of its own results

    too_big_image = api.call("POST", f"/v1/datasets/{dataset['id']}/images",
                             {"images": [{"base64": b64(image_files["astronaut.jpg"])}]})
    assert too_big_image.status == 413
    assert too_big_image.error["field"] == "images.0.base64"
    too_big_query = api.call("POST", "/v1/search",
                             {"image": b64(image_files["astronaut.jpg"])})
    assert too_big_query.status == 413 and too_big_query.error["field"] == "image"
    too_big_body = api.call("POST", "/v1/search", {"image": "A" * 400_000})
    assert too_big_body.status == 413 and too_big_body.error["code"] == "payload_too_large"
    assert process.poll() is None


def test_keys_command(cli_env: dict[str, str], api: Api) -> None:
    workspace = f"cli-keys-{os.getpid()}"
    created = _run(cli_env, "keys", "create", "--workspace", workspace, "--json")
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    assert new["workspace"] == workspace and new["key"].startswith("pdx_")
    mine = api.as_key(new["key"])
    assert mine.ok("POST", "/v1/datasets", {"name": "from-cli"})["name"] == "from-cli"

    plain = _run(cli_env, "keys", "create", "--workspace", workspace, "--read-only")
    assert plain.returncode == 0 and plain.stdout.startswith("pdx_")
    listed = json.loads(_run(cli_env, "keys", "list", "--workspace", workspace, "--json").stdout)
    assert [k["scope"] for k in listed] == ["write", "read"]
    assert new["key"] not in json.dumps(listed)  # never printed again

    revoked = _run(cli_env, "keys", "revoke", new["id"])
    assert revoked.returncode == 0, revoked.stderr
    denied = mine.call("GET", "/v1/datasets")
    assert denied.status == 401 and "revoked" in denied.error["message"]

    bad = _run(cli_env, "keys", "create", "--workspace", "no spaces allowed")
    assert bad.returncode == 2 and "workspace" in bad.stderr
    assert _run(cli_env, "keys", "revoke", "not-a-uuid").returncode == 2
    assert _run(cli_env, "serve", "--port", "70000").returncode == 2


def test_demo_then_serve_prints_working_curl_commands(cli_env: dict[str, str]) -> None:
    """What ``./run demo`` ends with: the API up on loopback and curl lines that work."""
    demo = _run(cli_env, "demo", "--json")
    assert demo.returncode == 0
    searches = {r["search"]: r for r in map(json.loads, demo.stdout.splitlines()) if "search" in r}
    assert searches['prompt: "a cup of coffee"']["results"][0]["name"] == "coffee.png"
    assert searches["like chelsea_flipped.jpg"]["results"][1]["name"] == "chelsea.png"
    port = _free_port()
    code = (
        "import argparse, sys; from pixdex.config import get_settings; "
        "from pixdex.cli.serve import serve_after_demo; "
        f"serve_after_demo(argparse.Namespace(host='127.0.0.1', port={port}, no_auth=False, "
        "quiet=True), get_settings())"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=cli_env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not (lines and lines[-1].startswith("curl") and "group" in lines[-1]):
            line = process.stdout.readline()
            assert line, "the server exited before printing its examples"
            lines.append(line.rstrip("\n"))
        assert any(f"http://127.0.0.1:{port}/docs" in line for line in lines)
        # It says where the web app is, and the page is there.
        assert any(f"open http://127.0.0.1:{port}/ in a browser" in line for line in lines)
        page = Api(f"http://127.0.0.1:{port}", None).call("GET", "/")
        assert page.status == 200 and b"pixdex" in page.body
        export = next(line for line in lines if line.startswith("export PIXDEX_KEY="))
        curls = [line for line in lines if line.startswith("curl ")]
        assert len(curls) == 5
        for command in curls:
            done = subprocess.run(["bash", "-c", f"{export}; {command} -w '\\n%{{http_code}}'"],
                                  capture_output=True, text=True, timeout=60, check=False)
            body, _, status = done.stdout.rpartition("\n")
            assert status == "200", (command, done.stdout[-500:])
            reply = json.loads(body)
            assert reply.get("results") or reply.get("datasets"), command
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
