"""Context settings of the CDK app: overrides reach the template, bad values and missing
build inputs fail synthesis with a message naming what to fix."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[1] / "infra"
sys.path.append(str(INFRA))

from pixdex_infra import InfraConfigError, build_app, context_keys, load_config  # noqa: E402
from pixdex_infra.application import Synthesis, cdk_json_context, synthesize  # noqa: E402

from tests.test_infra_support import build_inputs, only, resources  # noqa: E402

OVERRIDES = {
    "stackName": "PixdexStaging",
    # As `cdk deploy -c key=value` passes them: strings.
    "embedderInstanceType": "ml.g6.2xlarge",
    "embedderMinInstances": "2",
    "embedderMaxInstances": "6",
    "embedderInvocationsPerInstance": "1200",
    "minAcu": "1",
    "maxAcu": "32",
    "dbReaders": "1",
    "deletionProtection": "false",
    "postgresVersion": "17.4",
    "vpcId": "vpc-0123456789abcdef0",
    "vpcAvailabilityZones": "eu-west-1a,eu-west-1b",
    "vpcPrivateSubnetIds": "subnet-0aaa1111,subnet-0bbb2222",
    "modelArtifactS3Uri": "s3://team-models/pixdex/siglip2/model.tar.gz",
    "model": "siglip2-so400m",
    "alarmEmail": "oncall@example.com",
    "apiThrottleRate": "50",
    "apiThrottleBurst": "75",
    "ingestBatchSize": "25",
    "ingestMaxBatchingWindowSeconds": "20",
    "ingestMaxConcurrency": "4",
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return build_inputs(tmp_path_factory.mktemp("infra-inputs"))


@pytest.fixture(scope="module")
def overridden(inputs: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    out = tmp_path_factory.mktemp("infra-override") / "cdk.out"
    return synthesize({**cdk_json_context(), **inputs, **OVERRIDES}, out)


def test_overrides_reach_the_template(overridden: Synthesis) -> None:
    assert overridden.violations == []
    _, config = only(overridden, "AWS::SageMaker::EndpointConfig")
    variant = config["Properties"]["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.g6.2xlarge", 2)
    _, target = only(overridden, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (
        target["Properties"]["ResourceId"] == "endpoint/pixdexstaging-embedder/variant/AllTraffic"
    )
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 6)
    _, policy = only(overridden, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 1200

    _, cluster = only(overridden, "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 1, "MaxCapacity": 32}
    assert props["EngineVersion"] == "17.4"
    assert props["DeletionProtection"] is False
    assert len(resources(overridden, "AWS::RDS::DBInstance")) == 2  # writer + one reader

    _, stage = only(overridden, "AWS::ApiGatewayV2::Stage")
    route = stage["Properties"]["DefaultRouteSettings"]
    assert (route["ThrottlingRateLimit"], route["ThrottlingBurstLimit"]) == (50, 75)
    _, mapping = only(overridden, "AWS::Lambda::EventSourceMapping")
    assert mapping["Properties"]["BatchSize"] == 25
    assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] == 20
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 4}


def test_existing_vpc_is_used_not_created(overridden: Synthesis) -> None:
    assert not resources(overridden, "AWS::EC2::VPC")
    assert not resources(overridden, "AWS::EC2::NatGateway")
    expected = ["subnet-0aaa1111", "subnet-0bbb2222"]
    for fn in resources(overridden, "AWS::Lambda::Function").values():
        if fn["Properties"].get("Handler") == "handler.handler":
            assert fn["Properties"]["VpcConfig"]["SubnetIds"] == expected
    _, model = only(overridden, "AWS::SageMaker::Model")
    assert model["Properties"]["VpcConfig"]["Subnets"] == expected
    _, proxy = only(overridden, "AWS::RDS::DBProxy")
    assert proxy["Properties"]["VpcSubnetIds"] == expected


def test_model_artifact_is_mounted_and_readable_by_the_endpoint_only(
    overridden: Synthesis,
) -> None:
    _, model = only(overridden, "AWS::SageMaker::Model")
    container = model["Properties"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == OVERRIDES["modelArtifactS3Uri"]
    assert container["Environment"]["PIXDEX_MODEL"] == "siglip2-so400m"
    artifact_arn = ":s3:::team-models/pixdex/siglip2/model.tar.gz"
    readers = [
        [r["Ref"] for r in p["Properties"]["Roles"]]
        for p in resources(overridden, "AWS::IAM::Policy").values()
        if artifact_arn in json.dumps(p["Properties"]["PolicyDocument"])
    ]
    assert len(readers) == 1 and readers[0][0].startswith("EmbedderExecutionRole")


def test_disabled_deletion_protection_is_acknowledged_with_its_reason(
    overridden: Synthesis,
) -> None:
    _, cluster = only(overridden, "AWS::RDS::DBCluster")
    rules = cluster["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert [r["id"] for r in rules] == ["AwsSolutions-RDS10"]
    assert "deletionProtection=false" in rules[0]["reason"]


def test_alarm_email_subscribes_to_the_topic(overridden: Synthesis) -> None:
    _, subscription = only(overridden, "AWS::SNS::Subscription")
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"embedderInstanceType": "ml.m5.xlarge"}, "embedderInstanceType"),
        ({"embedderInstanceType": "ml.p3.2xlarge"}, "ml.g5, ml.g6 or ml.g6e"),
        ({"minAcu": 8, "maxAcu": 4}, "maxAcu must be >= minAcu"),
        ({"maxAcu": "lots"}, "maxAcu"),
        ({"maxAcu": 512}, "maxAcu"),
        ({"embedderMinInstances": 3, "embedderMaxInstances": 2}, "embedderMaxInstances"),
        ({"postgresVersion": "15.8"}, "postgresVersion"),
        ({"postgresVersion": "16.2"}, "lacks pgvector 0.8"),
        ({"modelArtifactS3Uri": "https://example.com/model.tar.gz"}, "modelArtifactS3Uri"),
        ({"vpcId": "vpc-0123456789abcdef0"}, "vpcPrivateSubnetIds"),
        (
            {
                "vpcId": "vpc-01234567",
                "vpcPrivateSubnetIds": "subnet-1,subnet-2",
                "vpcAvailabilityZones": "eu-west-1a",
            },
            "one per subnet",
        ),
        ({"vpcId": "my-vpc", "vpcPrivateSubnetIds": "a,b", "vpcAvailabilityZones": "x,y"}, "vpcId"),
        ({"vpcPrivateSubnetIds": "subnet-1,subnet-2"}, "need vpcId"),
        ({"logRetentionDays": 5}, "logRetentionDays"),
        ({"logLevel": "chatty"}, "logLevel"),
        ({"alarmEmail": "not-an-email"}, "alarmEmail"),
        ({"ingestMaxConcurrency": 1}, "ingestMaxConcurrency"),
        ({"apiThrottleRate": 500, "apiThrottleBurst": 100}, "apiThrottleBurst"),
        ({"apiMemoryMb": 64}, "apiMemoryMb"),
        ({"stackName": "pixdex_prod"}, "stackName"),
        ({"embedderInstanceTyp": "ml.g5.xlarge"}, "unknown context key(s) embedderInstanceTyp"),
    ],
)
def test_bad_context_is_refused_with_the_key_to_fix(context: dict[str, Any], message: str) -> None:
    with pytest.raises(InfraConfigError) as caught:
        load_config(context)
    assert message in str(caught.value)


def test_cli_strings_and_cdk_keys_are_understood() -> None:
    config = load_config(
        {
            "deletionProtection": "false",
            "dbReaders": "2",
            "minAcu": "0",
            "vpcId": "vpc-0abc1234",
            "vpcPrivateSubnetIds": ["subnet-a", "subnet-b"],
            "vpcAvailabilityZones": " us-east-1a , us-east-1b ",
            "functionsDir": "functions",
            "@aws-cdk/core:enablePartitionLiterals": True,
            "aws:cdk:enable-path-metadata": True,
            "acknowledged-issue-numbers": [1234],
        }
    )
    assert config.deletion_protection is False
    assert (config.db_readers, config.min_acu) == (2, 0)
    assert config.vpc_availability_zones == ("us-east-1a", "us-east-1b")
    assert config.functions_dir == INFRA.parent / "functions"  # relative to the repo
    assert load_config(cdk_json_context()) == load_config({})  # cdk.json states the defaults
    assert set(context_keys()) >= {k for k in cdk_json_context() if not k.startswith("@")}


def test_missing_build_inputs_say_how_to_build_them(inputs: dict[str, str], tmp_path: Path) -> None:
    cases = [
        ({"pixdexLayerDir": str(tmp_path / "nope")}, "build_layers.py"),
        ({"depsLayerDir": str(tmp_path / "nope")}, "depsLayerDir"),
        ({"functionsDir": str(tmp_path)}, "api/handler.py, ingest/handler.py, migrate/handler.py"),
        ({"embedderBuildContext": str(tmp_path)}, "Dockerfile is missing"),
        ({"embedderDockerfile": "docker/Dockerfile.gpu"}, "docker/Dockerfile.gpu is missing"),
    ]
    for override, message in cases:
        with pytest.raises(InfraConfigError) as caught:
            build_app({**inputs, **override})
        assert message in str(caught.value), override
