"""``pixdex taxonomy``: a workspace extends and trims the zero-shot taxonomy."""

from __future__ import annotations

import json
import subprocess

from pixdex.app.retag import workspace_taxonomy
from pixdex.config import Settings
from tests.test_cli import PIXDEX


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PIXDEX, "taxonomy", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_add_disable_reset_round_trip(cli_env: dict[str, str], settings: Settings) -> None:
    base = json.loads(_run(cli_env, "list", "--workspace", "tax-ws", "--json").stdout)
    added = _run(cli_env, "add", "objects", "forklift", "--prompt", "a photo of a forklift",
                 "--workspace", "tax-ws")
    assert added.returncode == 0, added.stderr
    disabled = _run(cli_env, "disable", "objects", "car", "--workspace", "tax-ws")
    assert disabled.returncode == 0, disabled.stderr
    after = json.loads(_run(cli_env, "list", "--workspace", "tax-ws", "--json").stdout)
    assert after["counts"]["objects"] == base["counts"]["objects"]  # +forklift, -car
    assert {(c["name"], c["enabled"]) for c in after["changes"]} == {
        ("forklift", True), ("car", False)}
    merged = workspace_taxonomy(settings, "tax-ws")
    names = {entry.name for entry in merged.objects}
    assert "forklift" in names and "car" not in names
    # Another workspace is untouched.
    assert "car" in {e.name for e in workspace_taxonomy(settings, "other-ws").objects}
    assert _run(cli_env, "reset", "objects", "car", "--workspace", "tax-ws").returncode == 0
    assert "car" in {e.name for e in workspace_taxonomy(settings, "tax-ws").objects}


def test_bad_input_is_refused_clearly(cli_env: dict[str, str]) -> None:
    wrong_kind = _run(cli_env, "add", "vehicles", "car")
    assert wrong_kind.returncode == 2 and "invalid choice" in wrong_kind.stderr
    missing = _run(cli_env, "reset", "objects", "never-added", "--workspace", "tax-ws2")
    assert missing.returncode == 2 and "has no change" in missing.stderr
    blank = _run(cli_env, "add", "scenes", "   ")
    assert blank.returncode == 2 and "Traceback" not in blank.stderr
