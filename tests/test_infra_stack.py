"""The CDK stack as `cdk deploy` would synthesize it from infra/cdk.json: key resources and
their properties, and cdk-nag's AwsSolutions checks with zero unacknowledged findings.

One synthesis for this module and ``tests/test_infra_functions.py`` (the functions, their
permissions and alarms; it takes ~10 s). Layers and function code come from small
folders made here, so the test needs neither the layer build nor Docker.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[1] / "infra"
sys.path.append(str(INFRA))

from aws_cdk.assertions import Match, Template  # noqa: E402
from pixdex_infra.application import Synthesis  # noqa: E402
from pixdex_infra.nag import MIN_REASON_LENGTH  # noqa: E402

from tests.test_infra_support import (  # noqa: E402
    default_synthesis,
    only,
    resources,
)


@pytest.fixture(scope="module")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return default_synthesis(tmp_path_factory)


@pytest.fixture(scope="module")
def template(synthesis: Synthesis) -> Template:
    return Template.from_json(synthesis.template)


def test_cdk_nag_finds_nothing_unacknowledged(synthesis: Synthesis) -> None:
    assert synthesis.violations == []


def test_every_acknowledgment_gives_a_specific_reason(synthesis: Synthesis) -> None:
    acknowledged = [
        (key, rule)
        for key, resource in synthesis.template["Resources"].items()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    ours = [(key, rule) for key, rule in acknowledged if rule["id"].startswith("AwsSolutions-")]
    assert len(ours) >= 10  # the Lambda IAM findings alone are more than that
    for key, rule in ours:
        assert len(rule.get("reason", "")) >= MIN_REASON_LENGTH, (key, rule)
    # aws-cdk-lib acknowledges some CloudFormation lint rules itself; those too say why.
    assert all(rule.get("reason") for _, rule in acknowledged)
    # No blanket acknowledgment of wildcard permissions: each names what it covers.
    assert not [r for _, r in ours if r["id"] == "AwsSolutions-IAM5"]


def test_images_bucket_is_private_encrypted_versioned_and_tls_only(
    synthesis: Synthesis, template: Template
) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "images/"}),
        },
    )
    images, bucket = only(synthesis, "AWS::S3::Bucket", "StorageImages")
    _, uploads = only(synthesis, "AWS::S3::Bucket", "StorageUploads")
    assert bucket["DeletionPolicy"] == uploads["DeletionPolicy"] == "Retain"
    assert uploads["Properties"]["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": images},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_object_events_go_to_a_queue_with_a_dead_letter_queue(
    synthesis: Synthesis, template: Template
) -> None:
    dlq, _ = only(synthesis, "AWS::SQS::Queue", "StorageDeadLetters")
    queue, props = only(synthesis, "AWS::SQS::Queue", "StorageObjectEvents")
    assert props["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert props["Properties"]["SqsManagedSseEnabled"] is True
    # Six times the ingest timeout (300 s) plus the batching window (5 s).
    assert props["Properties"]["VisibilityTimeout"] == 6 * 300 + 5
    images, _ = only(synthesis, "AWS::S3::Bucket", "StorageImages")
    uploads, _ = only(synthesis, "AWS::S3::Bucket", "StorageUploads")
    by_bucket = {
        r["Properties"]["BucketName"]["Ref"]: r["Properties"]["NotificationConfiguration"][
            "QueueConfigurations"]
        for r in synthesis.template["Resources"].values()
        if r["Type"] == "Custom::S3BucketNotifications"
    }
    assert sorted(by_bucket) == sorted([images, uploads])
    configs = by_bucket[images]
    assert sorted(c["Events"][0] for c in configs) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert all("Filter" not in c for c in configs)
    # The API's bucket: only files PUT to upload slots (the API queues the rest itself).
    assert by_bucket[uploads] == [{
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/slots/"}]}},
        "QueueArn": {"Fn::GetAtt": [queue, "Arn"]},
    }]
    assert all(c["QueueArn"] == {"Fn::GetAtt": [queue, "Arn"]} for c in configs)
    # The web app follows presigned links from the browser: S3 must answer its origin.
    buckets = synthesis.template["Resources"]
    read_rule = {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"], "MaxAge": 3600}
    assert buckets[images]["Properties"]["CorsConfiguration"]["CorsRules"] == [read_rule]
    assert buckets[uploads]["Properties"]["CorsConfiguration"]["CorsRules"] == [
        read_rule,
        {"AllowedHeaders": ["content-type"], "AllowedMethods": ["PUT"], "AllowedOrigins": ["*"],
         "MaxAge": 3600},
    ]


def test_aurora_serverless_v2_postgres_with_pgvector_08(
    synthesis: Synthesis, template: Template
) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "EngineVersion": "16.6",
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 8},
            "StorageEncrypted": True,
            "EnableIAMDatabaseAuthentication": True,
            "DeletionProtection": True,
            "DatabaseName": "pixdex",
        },
    )
    instances = resources(synthesis, "AWS::RDS::DBInstance")
    assert [i["Properties"]["DBInstanceClass"] for i in instances.values()] == ["db.serverless"]
    template.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {"RotationRules": {"ScheduleExpression": "rate(30 days)"}},
    )


def test_only_the_functions_reach_the_proxy_and_only_the_proxy_the_cluster(
    synthesis: Synthesis, template: Template
) -> None:
    template.has_resource_properties(
        "AWS::RDS::DBProxy",
        {
            "EngineFamily": "POSTGRESQL",
            "RequireTLS": True,
            "Auth": [Match.object_like({"AuthScheme": "SECRETS"})],
        },
    )
    clients, _ = only(synthesis, "AWS::EC2::SecurityGroup", "DatabaseClients")
    proxy_sg, _ = only(synthesis, "AWS::EC2::SecurityGroup", "DatabaseProxySecurityGroup")
    cluster_sg, _ = only(synthesis, "AWS::EC2::SecurityGroup", "DatabaseClusterSecurityGroup")
    ingress = [
        r["Properties"] for r in resources(synthesis, "AWS::EC2::SecurityGroupIngress").values()
    ]
    for sg, allowed_source in ((proxy_sg, {clients}), (cluster_sg, {proxy_sg})):
        rules = [r for r in ingress if r["GroupId"] == {"Fn::GetAtt": [sg, "GroupId"]}]
        sources = {r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in rules}
        # The rotation function also logs in to the cluster directly (its own group).
        assert allowed_source <= sources, (sg, sources)
        assert all("CidrIp" not in r for r in rules)
        if sg == proxy_sg:
            assert sources == {clients}
            assert {(r["FromPort"], r["ToPort"]) for r in rules} == {(5432, 5432)}
    assert all(
        "SecurityGroupIngress" not in sg["Properties"]
        for sg in resources(synthesis, "AWS::EC2::SecurityGroup").values()
    )


def test_gpu_endpoint_with_autoscaling_on_invocations(
    synthesis: Synthesis, template: Template
) -> None:
    template.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "InstanceType": "ml.g5.xlarge",
                        "InitialInstanceCount": 1,
                        "VariantName": "AllTraffic",
                    }
                )
            ]
        },
    )
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint", {"EndpointName": "pixdex-embedder"}
    )
    _, model = only(synthesis, "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]
    assert "container-assets" in json.dumps(container["Image"])  # the DockerImageAsset
    assert "ModelDataUrl" not in container  # no artifact configured: the image's model
    # The image's own PIXDEX_HOME holds its prebuilt graph: the deployment must not move it.
    assert set(container["Environment"]) == {
        "PIXDEX_MODEL",
        "PIXDEX_MODEL_ARTIFACT_DIR",
        "PIXDEX_EMBEDDER_ALLOWED_S3",
        "LOG_LEVEL",
    }
    # It reads only the stack's two buckets (Fn::Join over their names), whatever it is sent.
    allowed = json.dumps(container["Environment"]["PIXDEX_EMBEDDER_ALLOWED_S3"])
    assert allowed.count("s3://") == 2 and "Ref" in allowed
    assert model["Properties"]["VpcConfig"]["Subnets"]
    # Its network interfaces reach HTTPS (S3) only: no open egress.
    _, group = only(synthesis, "AWS::EC2::SecurityGroup", "EmbedderSecurityGroup")
    assert group["Properties"]["SecurityGroupEgress"] == [
        {"CidrIp": "0.0.0.0/0", "Description": "S3 over HTTPS: images read by key",
         "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443}
    ]
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "ServiceNamespace": "sagemaker",
            "ResourceId": "endpoint/pixdex-embedder/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "MinCapacity": 1,
            "MaxCapacity": 2,
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                    "TargetValue": 600,
                }
            ),
        },
    )


def test_embedder_image_builds_from_the_repository_with_only_what_it_needs(
    synthesis: Synthesis,
) -> None:
    assets = json.loads(
        (Path(synthesis.stack.node.root.outdir) / "Pixdex.assets.json").read_text()
    )["dockerImages"]
    assert len(assets) == 1
    (image,) = assets.values()
    source = image["source"]
    assert source["dockerFile"] == "functions/embedder/Dockerfile"
    assert source["platform"] == "linux/amd64"
    staged = Path(synthesis.stack.node.root.outdir) / source["directory"]
    top = sorted(p.name for p in staged.iterdir())
    # What the Dockerfile's ignore file lets through, and nothing else (no .venv, tests).
    assert top == ["README.md", "functions", "layers", "pyproject.toml"]
    assert (staged / "functions" / "embedder" / "Dockerfile").is_file()
    assert (staged / "layers" / "pixdex" / "serving" / "server.py").is_file()
    # The container's entry point runs a module that exists (and has a main).
    entry = (staged / "functions" / "embedder" / "serve").read_text()
    module = re.search(r"python -m ([\w.]+)", entry)
    assert module is not None, entry
    path = staged / "layers" / Path(*module[1].split(".")).with_suffix(".py")
    assert path.is_file() and "def main(" in path.read_text(), module[1]
    assert not list(staged.rglob("__pycache__"))
