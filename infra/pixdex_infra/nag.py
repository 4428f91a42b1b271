"""cdk-nag (AwsSolutions) findings we accept, each on the narrowest construct, each with
the reason it is acceptable. Anything not listed here fails synthesis.

The reasons also land in the template metadata (`cdk_nag.rules_to_suppress`), where the
infra tests check that every one is specific.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

if TYPE_CHECKING:
    from .stack import PixdexStack

_PARTITION_POLICY = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
BASIC_EXECUTION = f"AwsSolutions-IAM4[{_PARTITION_POLICY}AWSLambdaBasicExecutionRole]"
VPC_EXECUTION = f"AwsSolutions-IAM4[{_PARTITION_POLICY}AWSLambdaVPCAccessExecutionRole]"
ANY_RESOURCE = "AwsSolutions-IAM5[Resource::*]"
MIN_REASON_LENGTH = 40


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding on `construct` (and its children) for a stated reason."""
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"the reason for acknowledging {rule} must say why: {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def _objects_of(stack: Stack, bucket_resource: IConstruct, suffix: str) -> str:
    assert isinstance(bucket_resource, CfnElement)
    return f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(bucket_resource)}.Arn>/{suffix}]"


def acknowledge_findings(stack: PixdexStack) -> None:
    bucket_cfn = stack.storage.bucket.node.default_child
    assert bucket_cfn is not None
    any_image = _objects_of(stack, bucket_cfn, "*")

    functions = {
        "api": stack.api.function,
        "ingest": stack.ingest.function,
        "migrate": stack.migrations.function,
    }
    for name, function in functions.items():
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Pinned to python3.12: the dependency layer holds cp312 manylinux wheels "
            "(infra/build_layers.py --python-version 3.12); bump both together.",
        )
        acknowledge(
            function,
            BASIC_EXECUTION,
            f"The {name} function writes its own logs; AWSLambdaBasicExecutionRole only "
            "allows CreateLogStream/PutLogEvents, which is exactly that.",
        )
        acknowledge(
            function,
            VPC_EXECUTION,
            f"The {name} function runs in private subnets to reach RDS Proxy; Lambda needs "
            "the ENI permissions of AWSLambdaVPCAccessExecutionRole to attach to them.",
        )
        acknowledge(
            function,
            ANY_RESOURCE,
            "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not "
            "support resource-level permissions, so their resource is '*'.",
        )
    for function in (stack.api.function, stack.ingest.function):
        acknowledge(
            function,
            any_image,
            "Images are indexed and served by object key, and keys are chosen by the users "
            "who drop files into the bucket: read access (GetObject only) covers all keys.",
        )
    uploads_cfn = stack.storage.uploads.node.default_child
    assert uploads_cfn is not None
    any_upload = _objects_of(stack, uploads_cfn, "*")
    acknowledge(
        stack.api.function,
        any_upload,
        "The uploads bucket belongs to the API: it stores, reads and deletes the images "
        "sent through the API there, under keys it generates per upload.",
    )
    acknowledge(
        stack.ingest.function,
        any_upload,
        "The ingest function indexes the images the API stored (index jobs on its queue), "
        "by generated key: GetObject on the uploads bucket's objects only, no writes.",
    )
    acknowledge(
        stack.api.api,
        "AwsSolutions-APIG4",
        "Authentication is pixdex's workspace API keys (hashed, checked in constant time "
        "by the api function); HTTP APIs have no API-key authorizer to do it instead.",
    )

    if not stack.config.deletion_protection:
        acknowledge(
            stack.database.cluster,
            "AwsSolutions-RDS10",
            "The deploying team set context deletionProtection=false for a disposable "
            "environment; the default (cdk.json) keeps deletion protection on.",
        )

    role = stack.embedder.role
    acknowledge(
        role,
        ANY_RESOURCE,
        "SageMaker's execution role needs ecr:GetAuthorizationToken, "
        "cloudwatch:PutMetricData and the VPC ENI describe/create actions, none of which "
        "support resource-level permissions.",
    )
    acknowledge(
        role,
        any_image,
        "The endpoint reads images by S3 key (payloads over 6 MB cannot be sent inline), "
        "and keys are user-chosen: GetObject on every key of the images bucket only.",
    )
    acknowledge(
        role,
        any_upload,
        "The endpoint reads images uploaded through the API by S3 key, like the bucket's: "
        "GetObject on the uploads bucket's objects only.",
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:"
        "<AWS::AccountId>:log-group:/aws/sagemaker/Endpoints/*]",
        "SageMaker names the endpoint's log group and streams itself; access is limited to "
        "/aws/sagemaker/Endpoints/ in this account and region.",
    )

    # Singletons that aws-cdk-lib adds at the stack root.
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            acknowledge(
                child,
                BASIC_EXECUTION,
                "aws-cdk-lib's handler that configures the bucket's event notifications at "
                "deploy time; basic execution only writes its logs.",
            )
            acknowledge(
                child,
                ANY_RESOURCE,
                "aws-cdk-lib's bucket-notifications handler calls s3:PutBucketNotification, "
                "scoped by aws-cdk-lib; it runs only during deployments.",
            )
        elif child.node.id.startswith("LogRetention"):
            acknowledge(
                child,
                BASIC_EXECUTION,
                "aws-cdk-lib's handler that sets the Aurora log groups' retention at deploy "
                "time; basic execution only writes its logs.",
            )
            acknowledge(
                child,
                ANY_RESOURCE,
                "aws-cdk-lib's log-retention handler sets retention on log groups whose "
                "names RDS chooses at run time; it runs only during deployments.",
            )
