"""One way to build a pixdex Lambda function, so all three share the same settings.

Python 3.12 on x86_64 (the dependency layer holds cp312 manylinux wheels), the two layers,
X-Ray tracing, Powertools environment, a log group with a retention, and the private
subnets with the database-client security group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import InfraConfig, InfraConfigError

RUNTIME = lambda_.Runtime.PYTHON_3_12
METRICS_NAMESPACE = "Pixdex"


FUNCTIONS = ("api", "ingest", "migrate")


def require_functions(functions_dir: Path) -> None:
    """Fail synthesis naming every missing handler, not just the first one met."""
    missing = [
        f"{n}/handler.py" for n in FUNCTIONS if not (functions_dir / n / "handler.py").is_file()
    ]
    if missing:
        raise InfraConfigError(
            f"{', '.join(missing)} missing under {functions_dir}: each function's thin "
            "handler (function `handler`) lives there (or point context functionsDir at a "
            "folder holding api/, ingest/ and migrate/)"
        )


def function_code(functions_dir: Path, name: str) -> lambda_.Code:
    require_functions(functions_dir)
    return lambda_.Code.from_asset(
        str(functions_dir / name), exclude=["**/__pycache__", "**/*.pyc"]
    )


@dataclass(frozen=True)
class FunctionDefaults:
    """What every pixdex function shares: config, layers, network and base environment."""

    config: InfraConfig
    layers: Sequence[lambda_.ILayerVersion]
    vpc: ec2.IVpc
    security_group: ec2.ISecurityGroup
    environment: Mapping[str, str] = field(default_factory=dict)


class PixdexFunction(Construct):
    """A thin handler (`functions/<name>/handler.py`, function `handler`) plus its logs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        defaults: FunctionDefaults,
        timeout: Duration,
        memory_mb: int,
        reserved_concurrency: int | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        config = defaults.config
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        env = {
            "POWERTOOLS_SERVICE_NAME": f"pixdex-{name}",
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": config.log_level,
            # Lambda's file system is read-only outside /tmp.
            "PIXDEX_HOME": "/tmp/pixdex",  # noqa: S108
            **defaults.environment,
            **(environment or {}),
        }
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.handler",
            code=function_code(config.functions_dir, name),
            layers=list(defaults.layers),
            memory_size=memory_mb,
            timeout=timeout,
            environment=env,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            vpc=defaults.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[defaults.security_group],
            reserved_concurrent_executions=reserved_concurrency,
            description=f"pixdex {name} (thin handler; library in the pixdex layer)",
        )


def retention(days: int) -> logs.RetentionDays:
    """The log retention enum member for one of the day counts InfraConfig accepts."""
    return {
        7: logs.RetentionDays.ONE_WEEK,
        14: logs.RetentionDays.TWO_WEEKS,
        30: logs.RetentionDays.ONE_MONTH,
        60: logs.RetentionDays.TWO_MONTHS,
        90: logs.RetentionDays.THREE_MONTHS,
        180: logs.RetentionDays.SIX_MONTHS,
        365: logs.RetentionDays.ONE_YEAR,
    }[days]
