"""The ``migrate`` Lambda (CloudFormation custom resource) with the sample events in
events/migrate: a fresh database in the embedded PostgreSQL, the URL from a Secrets Manager
secret (moto), and CloudFormation's ResponseURL as a loopback HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

import pixdex.db_secret
from pixdex.config import get_settings
from pixdex.custom_resource import CustomResourceResponse, send_response
from pixdex.db_secret import lambda_settings, url_from_secret
from pixdex.errors import InvalidInputError
from pixdex.storage.migrate import load_migrations
from tests.lambda_support import ROOT, LambdaContext, load_handler

EVENTS = ROOT / "events" / "migrate"
CONTEXT = LambdaContext("pixdex-migrate")


@dataclass
class CloudFormation:
    """Stands in for the pre-signed S3 URL CloudFormation waits on."""

    url: str
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    state = CloudFormation(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("PIXDEX_HOME", str(tmp_path / "lambda-home"))
    monkeypatch.setenv("PIXDEX_AWS_REGION", "us-east-1")
    monkeypatch.delenv("PIXDEX_DATABASE_URL", raising=False)
    with mock_aws():
        _clear()
        yield boto3.client("secretsmanager", region_name="us-east-1")
    _clear()


def _clear() -> None:
    get_settings.cache_clear()
    lambda_settings.cache_clear()
    pixdex.db_secret._secret_url.cache_clear()
    pixdex.db_secret._client.cache_clear()


def _use_secret(monkeypatch: pytest.MonkeyPatch, arn: str) -> None:
    monkeypatch.setenv("PIXDEX_DATABASE_SECRET_ARN", arn)
    _clear()


def _event(name: str, response_url: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    path = event["ResponseURL"].split(".amazonaws.com", 1)[1]
    event["ResponseURL"] = response_url + path
    return event


def test_create_update_delete_apply_migrations_once_and_keep_data(
    aws: Any, fresh_database: str, cloudformation: CloudFormation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arn = aws.create_secret(Name="pixdex/db", SecretString=json.dumps({"url": fresh_database}))[
        "ARN"
    ]
    _use_secret(monkeypatch, arn)
    handler = load_handler("migrate")
    versions = [m.version for m in load_migrations()]

    created = handler.handler(_event("cfn-create", cloudformation.url), CONTEXT)
    assert created["Status"] == "SUCCESS"
    assert created["Data"] == {
        "SchemaVersion": str(versions[-1]), "Applied": ",".join(map(str, versions))
    }
    assert created["PhysicalResourceId"] == "pixdex-schema"
    path, headers, body = cloudformation.received[-1]
    assert body == created
    assert path.startswith("/arn%3Aaws%3Acloudformation") and "X-Amz-Signature" in path
    assert headers.get("Content-Type", "") == ""  # the pre-signed URL signs no content type
    event = _event("cfn-create", cloudformation.url)
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        event["StackId"], event["RequestId"], event["LogicalResourceId"]
    )

    updated = handler.handler(_event("cfn-update", cloudformation.url), CONTEXT)
    assert updated["Status"] == "SUCCESS" and updated["Data"]["Applied"] == ""
    assert updated["PhysicalResourceId"] == "pixdex-schema"

    deleted = handler.handler(_event("cfn-delete", cloudformation.url), CONTEXT)
    assert deleted["Status"] == "SUCCESS" and "kept" in deleted["Reason"]
    again = handler.handler(_event("cfn-update", cloudformation.url), CONTEXT)
    assert again["Data"]["Applied"] == ""  # the schema survived the delete
    assert len(cloudformation.received) == 4


def test_unreachable_database_answers_failed_without_secrets(
    aws: Any, cloudformation: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = {"username": "pixdex", "password": "s3cr3t-Pa55", "host": "127.0.0.1", "port": 1}
    arn = aws.create_secret(Name="pixdex/down", SecretString=json.dumps(secret))["ARN"]
    _use_secret(monkeypatch, arn)
    answer = load_handler("migrate").handler(_event("cfn-create", cloudformation.url), CONTEXT)
    assert answer["Status"] == "FAILED"
    assert "cannot connect to PostgreSQL" in answer["Reason"]
    assert "s3cr3t-Pa55" not in json.dumps(cloudformation.received[-1][2])
    assert "[$LATEST]abc" in answer["Reason"]  # where to look for the details
    assert answer["PhysicalResourceId"] == "pixdex-schema"


def test_missing_secret_answers_failed(
    aws: Any, cloudformation: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_secret(monkeypatch, "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf")
    answer = load_handler("migrate").handler(_event("cfn-update", cloudformation.url), CONTEXT)
    assert answer["Status"] == "FAILED"
    assert "cannot read the database secret" in answer["Reason"]
    assert cloudformation.received[-1][2]["Status"] == "FAILED"


def test_malformed_events(aws: Any, cloudformation: CloudFormation) -> None:
    handler = load_handler("migrate")
    event = _event("cfn-create", cloudformation.url)
    event["RequestType"] = "Upsert"
    answer = handler.handler(event, CONTEXT)
    assert answer["Status"] == "FAILED" and "RequestType" in answer["Reason"]
    assert cloudformation.received[-1][2]["Status"] == "FAILED"

    del event["ResponseURL"]
    with pytest.raises(InvalidInputError, match="no ResponseURL"):
        handler.handler(event, CONTEXT)
    response = CustomResourceResponse.model_validate(answer)
    with pytest.raises(InvalidInputError, match="https"):
        send_response("file:///etc/passwd", response)


def test_url_from_secret_forms() -> None:
    rds = {"engine": "postgres", "username": "app user", "password": "p@ss/word:1",
           "host": "proxy.example.internal", "port": 5432, "dbname": "pixdex"}
    assert url_from_secret(json.dumps(rds)) == (
        "postgresql://app%20user:p%40ss%2Fword%3A1@proxy.example.internal:5432/pixdex"
    )
    assert url_from_secret(json.dumps({**rds, "sslmode": "require"})).endswith(
        "/pixdex?sslmode=require"
    )
    # Issue 14: sslmode=require encrypts but trusts any certificate. verify-full checks the
    # proxy's (ACM-issued) certificate against Amazon's roots, from a file the layer carries.
    verified = conninfo_to_dict(url_from_secret(json.dumps({**rds, "sslmode": "verify-full"})))
    assert verified["sslmode"] == "verify-full"
    roots = Path(str(verified["sslrootcert"])).read_text()
    assert "Amazon Root CA 1" in roots and roots.count("BEGIN CERTIFICATE") > 10
    own = {**rds, "sslmode": "verify-ca", "sslrootcert": "/opt/rds/global-bundle.pem"}
    assert conninfo_to_dict(url_from_secret(json.dumps(own)))["sslrootcert"] == (
        "/opt/rds/global-bundle.pem"
    )
    assert url_from_secret(" postgresql://u:p@h/db ") == "postgresql://u:p@h/db"
    assert url_from_secret(json.dumps({"url": "postgresql://u@h/db"})) == "postgresql://u@h/db"
    with pytest.raises(InvalidInputError, match="lacks password, host") as info:
        url_from_secret(json.dumps({"username": "u"}))
    assert info.value.field == "database_secret_arn"
    with pytest.raises(InvalidInputError, match="postgresql:// URL") as plain:
        url_from_secret("hunter2")
    assert "hunter2" not in plain.value.message
