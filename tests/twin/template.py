"""What the twin reads from the synthesized CloudFormation template.

Nothing about the functions' environment, the queue or the event source mapping is
re-typed here: it is read from the template `cdk deploy` would deploy, so renaming a
setting in the stack (or dropping one) breaks the twin instead of drifting from it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FUNCTIONS = ("api", "ingest", "migrate")


class TemplateDriftError(AssertionError):
    """The template no longer has what the twin (and so the deployed stack) relies on."""


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    logical_id: str
    timeout_s: int
    memory_mb: int
    literal_env: dict[str, str]
    # Values CloudFormation resolves at deploy time (Ref, GetAtt, Join): name -> intrinsic.
    deploy_time_env: dict[str, Any]


@dataclass(frozen=True)
class QueueConfig:
    visibility_timeout_s: int
    max_receive_count: int


@dataclass(frozen=True)
class EventSourceConfig:
    batch_size: int
    max_batching_window_s: int
    report_batch_item_failures: bool
    max_concurrency: int | None


@dataclass(frozen=True)
class StackShape:
    functions: dict[str, FunctionConfig]
    queue: QueueConfig
    event_source: EventSourceConfig
    # Bucket ("images" / "uploads") -> its queue notifications as S3's API takes them
    # (Events, Filter), the queue left out: the twin has one queue.
    notifications: dict[str, list[dict[str, Any]]]


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _functions(template: dict[str, Any]) -> dict[str, FunctionConfig]:
    found: dict[str, FunctionConfig] = {}
    for logical_id, resource in _resources(template, "AWS::Lambda::Function").items():
        props = resource["Properties"]
        if props.get("Handler") != "handler.handler":
            continue  # CDK's own helper functions (bucket notifications, log retention)
        variables: dict[str, Any] = props.get("Environment", {}).get("Variables", {})
        service = variables.get("POWERTOOLS_SERVICE_NAME", "")
        name = service.removeprefix("pixdex-")
        found[name] = FunctionConfig(
            name=name,
            logical_id=logical_id,
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            literal_env={k: v for k, v in variables.items() if isinstance(v, str)},
            deploy_time_env={k: v for k, v in variables.items() if not isinstance(v, str)},
        )
    if sorted(found) != sorted(FUNCTIONS):
        raise TemplateDriftError(f"expected functions {FUNCTIONS}, template has {sorted(found)}")
    return found


def _queue(template: dict[str, Any]) -> QueueConfig:
    with_redrive = [
        r["Properties"]
        for r in _resources(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in r["Properties"]
    ]
    if len(with_redrive) != 1:
        raise TemplateDriftError(f"expected one queue with a DLQ, found {len(with_redrive)}")
    props = with_redrive[0]
    return QueueConfig(
        visibility_timeout_s=int(props["VisibilityTimeout"]),
        max_receive_count=int(props["RedrivePolicy"]["maxReceiveCount"]),
    )


def _event_source(template: dict[str, Any]) -> EventSourceConfig:
    mappings = list(_resources(template, "AWS::Lambda::EventSourceMapping").values())
    if len(mappings) != 1:
        raise TemplateDriftError(f"expected one event source mapping, found {len(mappings)}")
    props = mappings[0]["Properties"]
    return EventSourceConfig(
        batch_size=int(props.get("BatchSize", 10)),
        max_batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures"
        in props.get("FunctionResponseTypes", []),
        max_concurrency=props.get("ScalingConfig", {}).get("MaximumConcurrency"),
    )


_BUCKETS = {"StorageImages": "images", "StorageUploads": "uploads"}


def _notifications(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in _resources(template, "Custom::S3BucketNotifications").values():
        logical_id = resource["Properties"]["BucketName"]["Ref"]
        names = [name for prefix, name in _BUCKETS.items() if logical_id.startswith(prefix)]
        if len(names) != 1:
            raise TemplateDriftError(f"notifications for an unknown bucket {logical_id}")
        config = resource["Properties"]["NotificationConfiguration"]
        found[names[0]] = [
            {k: v for k, v in queue.items() if k != "QueueArn"}
            for queue in config.get("QueueConfigurations", [])
        ]
    if not found.get("images"):
        raise TemplateDriftError("the images bucket sends no events to a queue")
    return found


def read_stack(template: dict[str, Any]) -> StackShape:
    return StackShape(
        functions=_functions(template),
        queue=_queue(template),
        event_source=_event_source(template),
        notifications=_notifications(template),
    )


def function_environment(
    config: FunctionConfig, resolved: dict[str, str], overrides: dict[str, str]
) -> dict[str, str]:
    """The function's environment as Lambda would see it after deployment.

    ``resolved`` gives the twin's value for every deploy-time value (a bucket name, the
    secret's ARN, the proxy endpoint): it must name exactly those, so a variable added to
    or renamed in the stack fails here until the twin knows what stands in for it.
    ``overrides`` point the AWS SDK and the database at the emulated services.
    """
    wanted = set(config.deploy_time_env)
    given = {k for k in resolved if k in wanted}
    if given != wanted:
        raise TemplateDriftError(
            f"{config.name}: the twin has no stand-in for {sorted(wanted - given)}"
        )
    return {**config.literal_env, **{k: resolved[k] for k in wanted}, **overrides}


def synthesize_template(pixdex_layer: Path, deps_layer: Path, scratch: Path) -> dict[str, Any]:
    """The template `cdk deploy` would deploy (cdk.json's context plus one reader), with
    these layers.

    The embedder image's build context is a stand-in: the twin runs the embedder from the
    library itself, and hashing the repository for a Docker asset would only cost time.
    """
    infra = Path(__file__).resolve().parents[2] / "infra"
    if str(infra) not in sys.path:
        sys.path.append(str(infra))
    from pixdex_infra.application import cdk_json_context, synthesize

    context_dir = scratch / "embedder-context"
    (context_dir / "functions" / "embedder").mkdir(parents=True, exist_ok=True)
    (context_dir / "functions" / "embedder" / "Dockerfile").write_text("FROM scratch\n")
    context = {
        **cdk_json_context(),
        # With a reader, so the read-only proxy endpoint is twinned too.
        "dbReaders": 1,
        "pixdexLayerDir": str(pixdex_layer),
        "depsLayerDir": str(deps_layer),
        "embedderBuildContext": str(context_dir),
    }
    synthesis = synthesize(context, scratch / "cdk.out")
    if synthesis.violations:
        raise TemplateDriftError(f"cdk-nag findings: {synthesis.violations}")
    return synthesis.template
