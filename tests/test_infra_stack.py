"""The CDK stack as `cdk deploy` would synthesize it from infra/cdk.json: key resources and
their properties, and cdk-nag's AwsSolutions checks with zero unacknowledged findings.

One synthesis for the whole module (it takes ~10 s). Layers and function code come from
small folders made here, so the test needs neither the layer build nor Docker.
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
from pixdex_infra.application import Synthesis, cdk_json_context, synthesize  # noqa: E402
from pixdex_infra.migrate import migrations_fingerprint  # noqa: E402
from pixdex_infra.nag import MIN_REASON_LENGTH  # noqa: E402

from tests.test_infra_support import (  # noqa: E402
    actions_of,
    build_inputs,
    functions,
    only,
    policy_statements,
    resources,
)

REPO = INFRA.parent


@pytest.fixture(scope="module")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """cdk.json's settings, the repository's real function and embedder folders, and
    stand-in layers (building the real ones needs PyPI)."""
    root = tmp_path_factory.mktemp("infra-default")
    inputs = build_inputs(root)
    context = {
        **cdk_json_context(),
        "pixdexLayerDir": inputs["pixdexLayerDir"],
        "depsLayerDir": inputs["depsLayerDir"],
    }
    return synthesize(context, root / "cdk.out")


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


def test_http_api_stage_throttles_and_logs_access(synthesis: Synthesis, template: Template) -> None:
    logs, _ = only(synthesis, "AWS::Logs::LogGroup", "ApiAccessLogs")
    _, stage = only(synthesis, "AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == 100
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 200
    # And each key has a quota of its own in every function container.
    api = functions(synthesis)["pixdex-api"]["Environment"]["Variables"]
    assert (api["PIXDEX_KEY_REQUESTS_PER_SECOND"], api["PIXDEX_KEY_BURST"]) == ("20", "40")
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [logs, "Arn"]}
    assert "$context.requestId" in props["AccessLogSettings"]["Format"]
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0"},
    )
    template.has_resource_properties("AWS::ApiGatewayV2::Route", {"RouteKey": "$default"})


def test_functions_are_thin_python312_with_both_layers_and_tracing(synthesis: Synthesis) -> None:
    found = functions(synthesis)
    assert set(found) == {"pixdex-api", "pixdex-ingest", "pixdex-migrate"}
    library, _ = only(synthesis, "AWS::Lambda::LayerVersion", "LayersLibrary")
    deps, _ = only(synthesis, "AWS::Lambda::LayerVersion", "LayersDependencies")
    for name, props in found.items():
        env = props["Environment"]["Variables"]
        assert props["Runtime"] == "python3.12", name
        assert props["Architectures"] == ["x86_64"], name
        assert props["Layers"] == [{"Ref": deps}, {"Ref": library}], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["VpcConfig"]["SubnetIds"], name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Pixdex"
        assert env["LOG_LEVEL"] == "INFO"
        assert env["PIXDEX_DATABASE_NAME"] == "pixdex"
        assert env["PIXDEX_DATABASE_PORT"] == "5432"
        assert env["PIXDEX_DATABASE_HOST"]["Fn::GetAtt"][1] == "Endpoint"  # the proxy
        assert "PIXDEX_DATABASE_SECRET_ARN" in env
    for name in ("pixdex-api", "pixdex-ingest"):
        env = found[name]["Environment"]["Variables"]
        assert env["PIXDEX_EMBEDDER"] == "sagemaker"
        assert env["PIXDEX_SAGEMAKER_ENDPOINT"] == "pixdex-embedder"
    assert "PIXDEX_EMBEDDER" not in found["pixdex-migrate"]["Environment"]["Variables"]
    uploads, _ = only(synthesis, "AWS::S3::Bucket", "StorageUploads")
    for name in ("pixdex-api", "pixdex-ingest"):  # ingest: to recognise upload slots
        assert found[name]["Environment"]["Variables"]["PIXDEX_BLOB_ROOT"] == {
            "Fn::Join": ["", ["s3://", {"Ref": uploads}, "/uploads"]]
        }
    assert found["pixdex-api"]["Environment"]["Variables"]["PIXDEX_URL_FETCH_ALLOW_PRIVATE"] == (
        "false"
    )
    _, layer = only(synthesis, "AWS::Lambda::LayerVersion", "LayersDependencies")
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]


def test_ingest_reads_the_queue_in_batches_with_partial_failures(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 10},
        },
    )


def test_migrations_run_on_deploy_after_the_database(synthesis: Synthesis) -> None:
    key, schema = only(synthesis, "Custom::PixdexMigrations")
    migrate_fn = next(
        k
        for k, r in resources(synthesis, "AWS::Lambda::Function").items()
        if k.startswith("MigrateHandlerFunction")
    )
    props = schema["Properties"]
    assert props["ServiceToken"] == {"Fn::GetAtt": [migrate_fn, "Arn"]}
    real = REPO / "layers" / "pixdex" / "storage" / "migrations"
    assert props["MigrationsSha256"] == migrations_fingerprint(real)
    assert props["MigrationsSha256"] != migrations_fingerprint(real / "missing")
    cluster, _ = only(synthesis, "AWS::RDS::DBCluster")
    proxy, _ = only(synthesis, "AWS::RDS::DBProxy")
    assert {cluster, proxy} <= set(schema["DependsOn"]), key


def test_least_privilege(synthesis: Synthesis) -> None:
    api = policy_statements(synthesis, "ApiHandlerFunctionServiceRole")
    ingest = policy_statements(synthesis, "IngestHandlerFunctionServiceRole")
    migrate = policy_statements(synthesis, "MigrateHandlerFunctionServiceRole")
    for statements in (api, ingest, migrate):
        assert not [a for a in actions_of(statements) if a.endswith(":*") or a == "*"]
    assert "sagemaker:InvokeEndpoint" in actions_of(api) & actions_of(ingest)
    assert "sagemaker:InvokeEndpoint" not in actions_of(migrate)
    assert not {a for a in actions_of(migrate) if a.startswith("s3:")}
    assert not {"s3:PutObject", "s3:DeleteObject"} & actions_of(ingest)
    # The API writes only to its own uploads bucket; nothing writes to the team's images.
    uploads, _ = only(synthesis, "AWS::S3::Bucket", "StorageUploads")
    writes = [s for s in api if "s3:PutObject" in s["Action"]]
    assert len(writes) == 1
    assert writes[0]["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [uploads, "Arn"]}, "/*"]]}
    # Ingest indexes what the API uploaded (index jobs), so it reads that bucket too: the
    # twin cannot show this (moto checks no IAM), the template can.
    images, _ = only(synthesis, "AWS::S3::Bucket", "StorageImages")
    for statements in (api, ingest):
        readable = [r for s in statements if "s3:GetObject" in s["Action"]
                    for r in (s["Resource"] if isinstance(s["Resource"], list)
                              else [s["Resource"]])]
        assert sorted(json.dumps(r) for r in readable) == sorted(
            json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [b, "Arn"]}, "/*"]]})
            for b in (images, uploads)
        )
    # The API may put index jobs on the ingest queue, and only the ingest function reads it.
    queue, _ = only(synthesis, "AWS::SQS::Queue", "StorageObjectEvents")
    sends = [s for s in api if "sqs:SendMessage" in s["Action"]]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": [queue, "Arn"]}]
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & actions_of(api)
    api_env = functions(synthesis)["pixdex-api"]["Environment"]["Variables"]
    assert api_env["PIXDEX_INDEX_QUEUE_URL"] == {"Ref": queue}
    invoke = next(s for s in api if s["Action"] == "sagemaker:InvokeEndpoint")
    assert "endpoint/pixdex-embedder" in json.dumps(invoke["Resource"])
    role = policy_statements(synthesis, "EmbedderExecutionRole")
    assert not [
        a
        for a in actions_of(role)
        if a.startswith("s3:") and a not in {"s3:GetObject", "s3:GetObjectVersion"}
    ]


def test_alarms_page_the_topic(synthesis: Synthesis, template: Template) -> None:
    alarms = [a["Properties"] for a in resources(synthesis, "AWS::CloudWatch::Alarm").values()]
    metrics = {(a["Namespace"], a["MetricName"]) for a in alarms}
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5xx"),
        ("AWS/SageMaker", "Invocation5XXErrors"),
        ("AWS/SageMaker", "ModelLatency"),
        ("AWS/Lambda", "Errors"),
    } <= metrics
    topic, _ = only(synthesis, "AWS::SNS::Topic")
    assert all(a["AlarmActions"] == [{"Ref": topic}] for a in alarms)
    endpoint_alarms = [a for a in alarms if a["Namespace"] == "AWS/SageMaker"]
    for alarm in endpoint_alarms:
        assert {"Name": "EndpointName", "Value": "pixdex-embedder"} in alarm["Dimensions"]
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    assert not resources(synthesis, "AWS::SNS::Subscription")  # no alarmEmail in cdk.json


def test_without_readers_searches_use_the_writer_endpoint(synthesis: Synthesis) -> None:
    # With readers (the twin deploys one) the api function gets PIXDEX_DATABASE_READ_HOST,
    # the proxy's READ_ONLY endpoint: tests/test_twin_api.py.
    api = functions(synthesis)["pixdex-api"]["Environment"]["Variables"]
    assert "PIXDEX_DATABASE_READ_HOST" not in api
    assert resources(synthesis, "AWS::RDS::DBProxyEndpoint") == {}
