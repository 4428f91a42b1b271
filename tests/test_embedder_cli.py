"""``pixdex embedder serve | prepare`` as real processes."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

PIXDEX = shutil.which("pixdex", path=str(Path(sys.executable).parent)) or "pixdex"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.communicate()}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def test_serve_answers_invocations(
    cli_env: dict[str, str], photos: dict[str, Image.Image]
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**cli_env, "PIXDEX_PROVIDERS": "cpu"}
    process = subprocess.Popen(
        [PIXDEX, "embedder", "serve", "--port", str(port), "--max-images", "2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_ready(url, process)
        buffer = io.BytesIO()
        photos["coffee"].save(buffer, "JPEG")
        image = {"base64": base64.b64encode(buffer.getvalue()).decode()}
        request = urllib.request.Request(
            url + "/invocations", data=json.dumps({"images": [image]}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = json.loads(answer.read())
        assert "espresso" in body["tags"][0]["objects"]
        request = urllib.request.Request(
            url + "/invocations", data=json.dumps({"images": [image] * 3}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=60)
        assert info.value.code == 413
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], "--port must be 0-65535"),
        (["--max-images", "0"], "--max-images must be at least 1"),
        (["--max-request-bytes", "-5"], "--max-request-bytes must be at least 1"),
    ],
)
def test_serve_refuses_bad_flags(cli_env: dict[str, str], args: list[str], words: str) -> None:
    result = subprocess.run(
        [PIXDEX, "embedder", "serve", *args], env=cli_env, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 2
    assert words in result.stderr


def test_serve_on_a_busy_port_is_a_clear_error(cli_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [PIXDEX, "embedder", "serve", "--port", str(port)], env=cli_env,
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_prepare_builds_the_model(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [PIXDEX, "embedder", "prepare"], env=cli_env, capture_output=True, text=True,
        timeout=120, check=True,
    )
    assert json.loads(result.stdout) == {"model": "efficientnet-lite0", "dim": 1280, "ready": True}


SERVE = Path(__file__).resolve().parents[1] / "functions" / "embedder" / "serve"


@pytest.mark.parametrize("given", [None, "3"])
def test_container_serve_defaults_decode_workers_to_the_cpus(
    tmp_path: Path, given: str | None
) -> None:
    """The GPU container's entry point: one decode worker per vCPU unless configured."""
    fake = tmp_path / "python"  # stands in for the server: shows what it would get
    fake.write_text('#!/bin/sh\necho "$PIXDEX_DECODE_WORKERS $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    if given is not None:
        env["PIXDEX_DECODE_WORKERS"] = given
    out = subprocess.run(["sh", str(SERVE)], env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout.split()
    expected = given or str(min(len(os.sched_getaffinity(0)), 64))
    assert out[0] == expected
    assert out[1:] == ["-m", "pixdex.serving.server", "--host", "0.0.0.0", "--port", "8080"]
