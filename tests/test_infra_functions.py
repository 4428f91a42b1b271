"""The CDK stack's functions and their surroundings as `cdk deploy` would synthesize them
from infra/cdk.json: the HTTP API stage, the three thin Python 3.12 functions, the queue
they read, the migrations run on deploy, least privilege and the alarms. The storage,
database, network and GPU endpoint: ``tests/test_infra_stack.py`` (the same synthesis).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "infra"))

from aws_cdk.assertions import Match, Template
from pixdex_infra.application import Synthesis
from pixdex_infra.migrate import migrations_fingerprint

from tests.test_infra_support import (
    REPO,
    actions_of,
    default_synthesis,
    functions,
    only,
    policy_statements,
    resources,
)


@pytest.fixture(scope="module")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    return default_synthesis(tmp_path_factory)


@pytest.fixture(scope="module")
def template(synthesis: Synthesis) -> Template:
    return Template.from_json(synthesis.template)


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
