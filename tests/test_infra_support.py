"""Helpers shared by the infra tests (no tests here): stand-in build inputs, and lookups
into a synthesized template."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[1] / "infra"
sys.path.append(str(INFRA))

import pytest  # noqa: E402
from pixdex_infra.application import Synthesis, cdk_json_context, synthesize  # noqa: E402

REPO = INFRA.parent
_default: list[Synthesis] = []


def default_synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """The stack from cdk.json's settings, the repository's real function and embedder
    folders, and stand-in layers (building the real ones needs PyPI). Synthesized once
    per test process (~10 s) for the two modules that read it."""
    if not _default:
        root = tmp_path_factory.mktemp("infra-default")
        inputs = build_inputs(root)
        context = {
            **cdk_json_context(),
            "pixdexLayerDir": inputs["pixdexLayerDir"],
            "depsLayerDir": inputs["depsLayerDir"],
        }
        _default.append(synthesize(context, root / "cdk.out"))
    return _default[0]


def build_inputs(root: Path) -> dict[str, str]:
    """Stand-ins for the function folders, the embedder build context and the layers."""
    functions = root / "functions"
    for name in ("api", "ingest", "migrate"):
        (functions / name).mkdir(parents=True)
        (functions / name / "handler.py").write_text("def handler(event, context): ...\n")
    (functions / "embedder").mkdir()
    (functions / "embedder" / "Dockerfile").write_text("FROM scratch\nCOPY functions /f\n")
    library = root / "layer-pixdex" / "python" / "pixdex"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text("")
    deps = root / "layer-deps" / "python"
    deps.mkdir(parents=True)
    (deps / "placeholder.py").write_text("")
    return {
        "embedderBuildContext": str(root),
        "functionsDir": str(functions),
        "pixdexLayerDir": str(root / "layer-pixdex"),
        "depsLayerDir": str(root / "layer-deps"),
    }


def resources(synthesis: Synthesis, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in synthesis.template["Resources"].items() if r["Type"] == kind}


def only(synthesis: Synthesis, kind: str, prefix: str = "") -> tuple[str, dict[str, Any]]:
    found = [(k, r) for k, r in resources(synthesis, kind).items() if k.startswith(prefix)]
    assert len(found) == 1, f"expected one {kind} {prefix}*, found {[k for k, _ in found]}"
    return found[0]


def functions(synthesis: Synthesis) -> dict[str, dict[str, Any]]:
    """The three pixdex functions by name (api, ingest, migrate), by their handler."""
    found = {}
    for key, resource in resources(synthesis, "AWS::Lambda::Function").items():
        props = resource["Properties"]
        if props.get("Handler") == "handler.handler":
            found[props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]] = props
            assert key
    return found


def policy_statements(synthesis: Synthesis, role_prefix: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources(synthesis, "AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, role_prefix
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for s in statements:
        found |= {s["Action"]} if isinstance(s["Action"], str) else set(s["Action"])
    return found
