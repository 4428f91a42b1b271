"""Build the CDK app: context -> InfraConfig -> PixdexStack, with cdk-nag's AwsSolutions
checks as a validation plugin (synthesis fails on any finding not acknowledged)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from .config import REPO_ROOT, load_config
from .stack import PixdexStack

CDK_JSON = REPO_ROOT / "infra" / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context block of cdk.json: what `cdk deploy` uses unless `-c` overrides it."""
    context = json.loads(path.read_text())["context"]
    assert isinstance(context, dict)
    return context


def build_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None
) -> tuple[App, PixdexStack]:
    """The app and its one stack. `context` adds to what the CDK CLI passes in."""
    app = App(context=dict(context or {}), outdir=outdir)
    config = load_config(app.node.get_all_context())
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    stack = PixdexStack(app, config.stack_name, config=config, env=env)
    # The acknowledgments (with their reasons) also go into the template's metadata,
    # where reviewers and compliance tooling read them.
    Validations.of(app).add_plugins(
        AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True)
    )
    return app, stack


class NagFindingsError(RuntimeError):
    """Synthesis found cdk-nag violations nobody acknowledged; the message lists them."""


@dataclass(frozen=True)
class Synthesis:
    stack: PixdexStack
    template: dict[str, Any]
    violations: list[str]


def nag_violations(outdir: Path) -> list[str]:
    """'RULE at PATH' for every finding in the validation report (empty when clean)."""
    report_path = outdir / "validation-report.json"
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text())
    return [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def synthesize(context: Mapping[str, Any], outdir: Path) -> Synthesis:
    """Synthesize into `outdir` and return the template; raise with the findings if any."""
    app, stack = build_app(context, outdir=str(outdir))
    try:
        assembly = app.synth()
    except RuntimeError as exc:
        violations = nag_violations(outdir)
        if violations:
            raise NagFindingsError("\n".join(violations)) from exc
        raise
    template = assembly.get_stack_by_name(stack.stack_name).template
    return Synthesis(stack=stack, template=template, violations=nag_violations(outdir))
