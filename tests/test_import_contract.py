"""The import contract (pyproject's [tool.importlinter]) covers what the Lambda handlers
really import: every pixdex module a handler names is one of the contract's sources."""

from __future__ import annotations

import ast
import tomllib

from tests.lambda_support import ROOT

HANDLERS = ("api", "ingest", "migrate")


def _contract_sources() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["name"].startswith("Lambda-loaded")]
    return set(contract["source_modules"])


def _pixdex_imports(function: str) -> set[str]:
    tree = ast.parse((ROOT / "functions" / function / "handler.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pixdex"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pixdex")}
    return found


def test_every_pixdex_module_a_handler_imports_is_checked_by_the_contract() -> None:
    sources = _contract_sources()
    imported = {module for name in HANDLERS for module in _pixdex_imports(name)}
    assert imported, "the handlers import the library"
    assert imported <= sources, f"add {sorted(imported - sources)} to the contract's sources"
