"""Deployment settings for the CDK app, read from CDK context and validated up front.

Every knob a platform team may turn lives here, with its default, so `cdk synth` fails
early with a message naming the context key to fix instead of deep inside CloudFormation.
Values given on the command line (`-c key=value`) arrive as strings; pydantic's lax mode
turns "2" into 2 and "true" into True.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

REPO_ROOT = Path(__file__).resolve().parents[2]

# SageMaker GPU families the embedder image is built for (CUDA + onnxruntime-gpu).
_GPU_INSTANCE = re.compile(r"^ml\.(g5|g6|g6e)\.(x|2x|4x|8x|12x|16x|24x|48x)large$")
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>.+)$")
# pgvector 0.8 (iterative index scans) ships with Aurora PostgreSQL 16.6+ and 17.x.
_PG_VERSION = re.compile(r"^(?P<major>1[6-9])\.(?P<minor>\d+)$")
_MIN_PG_MINOR = {16: 6, 17: 1}
# Plain camelCase keys are ours; CDK's own keys carry '@', ':' or '-'.
_OUR_KEY = re.compile(r"^[a-z][a-zA-Z0-9]*$")


class InfraConfigError(ValueError):
    """A context value is missing or invalid; the message names the key and the fix."""


class InfraConfig(BaseModel):
    """Everything the stack reads from context. Field `foo_bar` is context key `fooBar`."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )

    stack_name: str = Field(default="Pixdex", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,53}$")

    # Inference (SageMaker real-time endpoint).
    embedder_instance_type: str = "ml.g5.xlarge"
    embedder_min_instances: int = Field(default=1, ge=1, le=20)
    embedder_max_instances: int = Field(default=2, ge=1, le=20)
    # Target of the SageMakerVariantInvocationsPerInstance metric (per minute).
    embedder_invocations_per_instance: int = Field(default=600, ge=1, le=100_000)
    model_artifact_s3_uri: str | None = None
    model: str = Field(default="efficientnet-lite0", min_length=1, max_length=100)

    # Database (Aurora Serverless v2).
    postgres_version: str = "16.6"
    min_acu: float = Field(default=0.5, ge=0, le=256)
    max_acu: float = Field(default=8, ge=1, le=256)
    db_readers: int = Field(default=0, ge=0, le=15)
    deletion_protection: bool = True

    # Network: a new VPC, or an existing one described by its attributes.
    vpc_id: str | None = None
    vpc_availability_zones: tuple[str, ...] = ()
    vpc_private_subnet_ids: tuple[str, ...] = ()
    max_azs: int = Field(default=2, ge=2, le=6)
    nat_gateways: int = Field(default=1, ge=1, le=6)

    # HTTP API.
    api_throttle_rate: int = Field(default=100, ge=1, le=10_000)
    api_throttle_burst: int = Field(default=200, ge=1, le=5_000)
    api_memory_mb: int = Field(default=1024, ge=256, le=10_240)
    api_reserved_concurrency: int | None = Field(default=None, ge=1, le=10_000)
    # Per API key, in each warm function container (the stage throttle bounds the total).
    api_key_rate: float = Field(default=20, gt=0, le=10_000)
    api_key_burst: int = Field(default=40, ge=1, le=10_000)

    # Ingest (S3 -> SQS -> Lambda).
    ingest_batch_size: int = Field(default=10, ge=1, le=10_000)
    ingest_max_batching_window_seconds: int = Field(default=5, ge=0, le=300)
    ingest_max_concurrency: int = Field(default=10, ge=2, le=1000)
    ingest_timeout_seconds: int = Field(default=300, ge=30, le=900)
    ingest_memory_mb: int = Field(default=1024, ge=256, le=10_240)
    dlq_max_receive_count: int = Field(default=5, ge=1, le=1000)

    # Observability.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365] = 30
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    # Local build inputs (defaults: this repository). Tests point them at small folders.
    functions_dir: Path = REPO_ROOT / "functions"
    # The embedder image builds from the repository root (it installs layers/pixdex).
    embedder_build_context: Path = REPO_ROOT
    embedder_dockerfile: str = Field(
        default="functions/embedder/Dockerfile", pattern=r"^[^/].*Dockerfile[^/]*$"
    )
    # Prebuilt layer folders (infra/build_layers.py --out DIR); unset, synthesis builds
    # the layer itself (local bundling), so a deploy never ships a stale build.
    pixdex_layer_dir: Path | None = None
    deps_layer_dir: Path | None = None
    migrations_dir: Path = REPO_ROOT / "layers" / "pixdex" / "storage" / "migrations"

    @field_validator("vpc_availability_zones", "vpc_private_subnet_ids", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        # `-c vpcPrivateSubnetIds=subnet-a,subnet-b` arrives as one string.
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "functions_dir",
        "embedder_build_context",
        "pixdex_layer_dir",
        "deps_layer_dir",
        "migrations_dir",
    )
    @classmethod
    def _repo_relative(cls, value: Path | None) -> Path | None:
        # Relative paths mean the same thing whether cdk runs in infra/ or at the root.
        if value is None or value.is_absolute():
            return value
        return REPO_ROOT / value

    @field_validator("embedder_instance_type")
    @classmethod
    def _gpu_instance(cls, value: str) -> str:
        if not _GPU_INSTANCE.match(value):
            raise ValueError(
                f"{value!r} is not a supported GPU instance type: use the ml.g5, ml.g6 or "
                "ml.g6e family, e.g. ml.g5.xlarge or ml.g6.2xlarge"
            )
        return value

    @field_validator("model_artifact_s3_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None and not _S3_URI.match(value):
            raise ValueError(f"{value!r} is not an s3://bucket/key URI of a model.tar.gz")
        return value

    @field_validator("postgres_version")
    @classmethod
    def _pg_version(cls, value: str) -> str:
        match = _PG_VERSION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not an Aurora PostgreSQL version like 16.6 or 17.4")
        major, minor = int(match["major"]), int(match["minor"])
        if minor < _MIN_PG_MINOR.get(major, 0):
            raise ValueError(
                f"Aurora PostgreSQL {value} lacks pgvector 0.8: use 16.6 or newer (or 17.x)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> InfraConfig:
        if self.embedder_max_instances < self.embedder_min_instances:
            raise ValueError("embedderMaxInstances must be >= embedderMinInstances")
        if self.max_acu < self.min_acu:
            raise ValueError("maxAcu must be >= minAcu")
        if self.api_throttle_burst < self.api_throttle_rate and self.api_throttle_burst < 5000:
            # API Gateway accepts it, but a burst below the rate throttles steady traffic.
            raise ValueError("apiThrottleBurst must be >= apiThrottleRate")
        if self.vpc_id is None and (self.vpc_availability_zones or self.vpc_private_subnet_ids):
            raise ValueError("vpcAvailabilityZones / vpcPrivateSubnetIds need vpcId")
        if self.vpc_id is not None:
            if not re.match(r"^vpc-[0-9a-f]{8,17}$", self.vpc_id):
                raise ValueError(f"vpcId {self.vpc_id!r} is not a VPC id like vpc-0abc1234")
            if len(self.vpc_private_subnet_ids) < 2 or len(self.vpc_availability_zones) != len(
                self.vpc_private_subnet_ids
            ):
                raise ValueError(
                    "an existing VPC needs vpcPrivateSubnetIds (at least 2, with egress) and "
                    "vpcAvailabilityZones (one per subnet, same order)"
                )
        return self

    @property
    def model_artifact(self) -> tuple[str, str] | None:
        """(bucket, key) of the model artifact, when one is configured."""
        if self.model_artifact_s3_uri is None:
            return None
        match = _S3_URI.match(self.model_artifact_s3_uri)
        assert match is not None  # checked by the validator
        return match["bucket"], match["key"]


def context_keys() -> list[str]:
    """Every context key the app understands (camelCase), for docs and error messages."""
    return sorted(to_camel(name) for name in InfraConfig.model_fields)


def load_config(context: Mapping[str, Any]) -> InfraConfig:
    """Build the config from a CDK context mapping; unknown camelCase keys are typos."""
    known = set(context_keys())
    unknown = sorted(k for k in context if _OUR_KEY.match(k) and k not in known)
    if unknown:
        raise InfraConfigError(
            f"unknown context key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
        )
    values = {k: v for k, v in context.items() if k in known and v is not None}
    try:
        return InfraConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(to_camel(str(p)) for p in err['loc']) or 'context'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InfraConfigError(f"invalid CDK context: {problems}") from exc
