"""The one pixdex stack, assembled from the small constructs of this package."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from .api import HttpApi
from .config import InfraConfig, InfraConfigError
from .database import Database, build_vpc
from .inference import Embedder
from .ingest import IngestFunction
from .lambdas import FunctionDefaults
from .layers import PixdexLayers
from .migrate import Migrations
from .nag import acknowledge_findings
from .observability import Alarms
from .storage import ImageStorage

# The endpoint is named "<stack>-embedder" and SageMaker names stop at 63 characters.
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,53}$")


class PixdexStack(Stack):
    """Bucket + queue, VPC + Aurora + proxy, GPU endpoint, HTTP API, functions, alarms."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: InfraConfig, **kwargs: Any
    ) -> None:
        super().__init__(
            scope, construct_id, description="pixdex: self-hosted image search", **kwargs
        )
        if not _STACK_NAME.match(self.stack_name):
            raise InfraConfigError(
                f"stack name {self.stack_name!r}: use letters, digits and '-', at most 54"
            )
        self.config = config
        self.vpc = build_vpc(self, config)
        self.storage = ImageStorage(self, "Storage", config=config)
        self.database = Database(self, "Database", config=config, vpc=self.vpc)
        self.layers = PixdexLayers(
            self, "Layers", pixdex_dir=config.pixdex_layer_dir, deps_dir=config.deps_layer_dir
        )
        self.embedder = Embedder(
            self,
            "Embedder",
            config=config,
            vpc=self.vpc,
            images=[self.storage.bucket, self.storage.uploads],
        )

        database_only = FunctionDefaults(
            config=config,
            layers=self.layers.all,
            vpc=self.vpc,
            security_group=self.database.clients,
            environment=self.database.environment,
        )
        with_embedder = replace(
            database_only,
            environment={**self.database.environment, **self.embedder.environment},
        )
        self.migrations = Migrations(
            self,
            "Migrate",
            defaults=database_only,
            library=self.layers.library,
            after=[self.database.cluster, self.database.proxy],
        )
        bucket, uploads = self.storage.bucket, self.storage.uploads
        self.api = HttpApi(
            self,
            "Api",
            defaults=replace(
                with_embedder,
                environment={
                    **with_embedder.environment,
                    **self.database.read_environment,
                    # Images added through the API are indexed by the ingest function.
                    "PIXDEX_INDEX_QUEUE_URL": self.storage.queue.queue_url,
                },
            ),
            blob_root=self.storage.api_blob_root,
        )
        self.ingest = IngestFunction(
            self,
            "Ingest",
            defaults=replace(
                with_embedder,
                # To tell files PUT to upload slots from the images bucket's drops.
                environment={
                    **with_embedder.environment,
                    "PIXDEX_BLOB_ROOT": self.storage.api_blob_root,
                },
            ),
            queue=self.storage.queue,
        )

        api_fn, ingest_fn = self.api.function.function, self.ingest.function.function
        for function in (api_fn, ingest_fn, self.migrations.function.function):
            self.database.grant_connect(function)
        for function in (api_fn, ingest_fn):
            self.embedder.grant_invoke(function)
            # Both read both buckets: ingest indexes the API's uploads too (index jobs).
            for readable in (bucket, uploads):
                # Exact actions rather than grant_read's GetObject*/List*/GetBucket*.
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["s3:GetObject", "s3:GetObjectVersion"],
                        resources=[readable.arn_for_objects("*")],
                    )
                )
                # Without ListBucket a missing key reads as 403 instead of 404.
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["s3:ListBucket"], resources=[readable.bucket_arn]
                    )
                )
        # The API stores (and deletes) images in its own bucket, never in the team's.
        api_fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:DeleteObject"],
                resources=[uploads.arn_for_objects("*")],
            )
        )
        # Index jobs for images added through the API go on the ingest queue.
        self.storage.queue.grant_send_messages(api_fn)

        self.alarms = Alarms(
            self,
            "Alarms",
            alarm_email=config.alarm_email,
            dlq=self.storage.dlq,
            api_id=self.api.api.api_id,
            functions={"Api": api_fn, "Ingest": ingest_fn},
            endpoint_name=self.embedder.endpoint_name,
        )
        self._outputs()
        acknowledge_findings(self)

    def _outputs(self) -> None:
        outputs = {
            "ApiUrl": self.api.url,
            "ImagesBucket": self.storage.bucket.bucket_name,
            "UploadsBucket": self.storage.uploads.bucket_name,
            "EndpointName": self.embedder.endpoint_name,
            "DatabaseProxyEndpoint": self.database.proxy.endpoint,
            "DatabaseSecretArn": self.database.secret.secret_arn,
            # Join this group (e.g. a CloudShell VPC environment) to reach the proxy.
            "DatabaseClientSecurityGroup": self.database.clients.security_group_id,
            "DeadLetterQueueUrl": self.storage.dlq.queue_url,
            "AlarmTopicArn": self.alarms.topic.topic_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
