"""What a ``pixdex`` process loads: only the command it runs, and no onnx to serve a
cached model file (importing onnx alone takes 1-2 s; see the CLI latency benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.test_cli import run

WATCHED = ("onnx", "onnxruntime", "pixdex.app.search", "pixdex.cli.serve", "pixdex.cli.embedder",
           "pixdex.cli.search", "pixdex.cli.manage", "pixdex.app.admin", "pixdex.engines")

# The console script's own entry, then the modules it ended up with.
PROBE = f"""
import json, sys
from pixdex.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "loaded": [m for m in {WATCHED!r} if m in sys.modules]}}))
"""


def loaded_by(env: dict[str, str], *args: str) -> set[str]:
    result = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.splitlines()[-1])
    assert probe["code"] == 0, result.stderr
    return set(probe["loaded"])


def test_a_command_loads_only_its_own_module(cli_env: dict[str, str]) -> None:
    assert loaded_by(cli_env, "db", "status") == {"pixdex.cli.manage"}


def test_search_like_serves_the_cached_model_without_onnx(
    cli_env: dict[str, str], tmp_path: Path, photos: dict[str, Image.Image]
) -> None:
    photos["coffee"].save(tmp_path / "coffee.png")
    run(cli_env, "index", str(tmp_path), "--dataset", "cli-imports", "--json")  # model cached
    loaded = loaded_by(cli_env, "search", "--dataset", "cli-imports", "--like",
                       str(tmp_path / "coffee.png"), "--json")
    assert "onnxruntime" in loaded and "pixdex.app.search" in loaded
    assert "onnx" not in loaded
    assert not loaded & {"pixdex.cli.serve", "pixdex.cli.embedder", "pixdex.cli.manage"}
