"""Schema migrations on every deploy: the `migrate` function as a CloudFormation custom
resource.

CloudFormation invokes the function directly (Lambda-backed custom resource); the handler
applies the migrations and answers on the pre-signed ResponseURL itself. The resource's
properties carry a hash of the migration files and the library layer's version, so any
change to either runs the (idempotent, advisory-locked) migrations again. Delete leaves
the data alone.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aws_cdk import CustomResource, Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IDependable

from .lambdas import FunctionDefaults, PixdexFunction


def migrations_fingerprint(folder: Path) -> str:
    """sha256 over the migration files' names and contents (empty folder: a fixed value)."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.sql")) if folder.is_dir() else []:
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


class Migrations(Construct):
    """`function` (functions/migrate) and `resource`, the custom resource that runs it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        defaults: FunctionDefaults,
        library: lambda_.ILayerVersion,
        after: list[IDependable],
    ) -> None:
        super().__init__(scope, construct_id)
        config = defaults.config
        self.function = PixdexFunction(
            self,
            "Handler",
            name="migrate",
            defaults=defaults,
            # Building an HNSW index on a large table can take minutes.
            timeout=Duration.minutes(15),
            memory_mb=512,
            # No reserved concurrency (new accounts cannot reserve any): CloudFormation
            # invokes it once per deploy, and the library takes an advisory lock anyway.
        )
        self.resource = CustomResource(
            self,
            "Schema",
            service_token=self.function.function.function_arn,
            resource_type="Custom::PixdexMigrations",
            properties={
                "MigrationsSha256": migrations_fingerprint(config.migrations_dir),
                "LibraryLayer": library.layer_version_arn,
            },
        )
        # The database, its proxy and the function's network must be up first.
        for dependency in after:
            self.resource.node.add_dependency(dependency)
