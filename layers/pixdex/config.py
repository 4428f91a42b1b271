"""One settings object for the whole process, validated at start-up.

Every value comes from a ``PIXDEX_*`` environment variable (or its default). Secrets are
referenced by name only (``database_secret_arn``), never stored here in clear text.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".pixdex"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIXDEX_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=_default_home, description="Data directory.")
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL (pgvector >= 0.8). Unset: the embedded server in home.",
    )
    database_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret holding the database URL (AWS)."
    )
    # RDS Proxy (AWS): the secret names the cluster writer, the functions reach the proxy.
    # Each of these, when set, replaces the secret's host / port / dbname / sslmode.
    database_host: str | None = None
    database_port: int | None = Field(default=None, ge=1, le=65535)
    database_name: str | None = None
    database_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = None
    # The CA bundle for sslmode verify-ca / verify-full; unset: Amazon's root CAs (RDS Proxy).
    database_sslrootcert: str | None = None
    # Read replicas: searches and other read-only queries go to this URL when it is set
    # (in AWS resolved from the secret with ``database_read_host``, the RDS Proxy's
    # read-only endpoint). Writes and migrations always use ``database_url``.
    database_read_url: SecretStr | None = None
    database_read_host: str | None = None
    # The embedded PostgreSQL stays up this long after its last use (0: stops with the last
    # process using it), so consecutive CLI commands find it running.
    db_linger_seconds: int = Field(default=300, ge=0, le=86_400)
    # The embedded PostgreSQL reloads the blocks it had cached when it starts again
    # (pg_prewarm's autoprewarm), so searches after a restart do not read the graphs from
    # disk; applies from the server's next start.
    db_autoprewarm: bool = True
    model: str = Field(default="efficientnet-lite0", description="Default embedding model.")
    # A model directory installed outside home: on SageMaker the packed model artifact,
    # unpacked into /opt/ml/model (`pixdex models export --pack`).
    model_artifact_dir: Path | None = None
    providers: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(default=32, ge=1, le=512)
    decode_workers: int = Field(default=2, ge=1, le=64)
    max_image_pixels: int = Field(default=64_000_000, ge=1)
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    object_tag_threshold: float = Field(default=0.10, ge=0.0, le=1.0)
    object_tag_top_k: int = Field(default=5, ge=1, le=50)
    hnsw_ef_search: int = Field(default=100, ge=10, le=1000)
    # A search's statements are cancelled past this (503 search_timeout): one slow query
    # must not hold a pool connection, or a Lambda, for minutes.
    search_timeout_ms: int = Field(default=20_000, ge=1, le=600_000)
    # Filtered rows ranked exactly (no index) up to this many; a dataset holding more gets
    # an HNSW index of its own. ~3 us a row on a quiet 2-core machine (26 us at load 10),
    # so 5,000 rows is about the 20 ms budget (docs/benchmarks.md, "Search at scale").
    exact_search_max_rows: int = Field(default=5_000, ge=0)
    # Dataset curation: how many nearest neighbours each image keeps (the kNN graph that
    # duplicates, leakage, outliers and label doubts read), and how many kNN queries one
    # statement of a recompute or incremental update carries.
    curation_neighbours: int = Field(default=8, ge=2, le=64)
    curation_batch: int = Field(default=256, ge=1, le=10_000)
    curation_workers: int = Field(default=2, ge=1, le=32)
    workspace: str = Field(default="default", min_length=1, max_length=100)

    # Where images uploaded through the API are stored: a file:// folder or s3://bucket/prefix.
    # Unset: a folder under home.
    blob_root: str | None = None
    # HTTP API: keys are required unless the server is started explicitly without them.
    require_api_keys: bool = True
    max_request_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # `pixdex serve`: connections served at once (one thread each, idle keep-alive
    # included); the next one is answered 503 rather than given another thread.
    max_connections: int = Field(default=64, ge=1, le=4096)
    # Per API key: requests a second and the burst allowed above it (429 beyond); unset:
    # no per-key quota (a local server's users are its owner's).
    key_requests_per_second: float | None = Field(default=None, gt=0, le=100_000)
    key_burst: int = Field(default=20, ge=1, le=100_000)
    max_images_per_request: int = Field(default=128, ge=1, le=1024)
    # What the URLs of one "add images" call may download in all (each image is stored
    # as it arrives, so this bounds the call's time and traffic, not its memory).
    max_fetch_bytes_per_request: int = Field(default=512 * 1024 * 1024, ge=1024)
    # Images added through the API are indexed after the answer: with this SQS queue by
    # the ingest function (AWS), without it by the serving process's background indexer.
    index_queue_url: str | None = None
    # The queue's maxReceiveCount (the ingest function): on an index job's last delivery
    # its images are marked failed with the reason instead of waiting in the DLQ forever.
    index_max_receives: int | None = Field(default=None, ge=1, le=1000)
    # Originals stored in S3 are served by a redirect to a presigned URL valid this long.
    presigned_url_seconds: int = Field(default=300, ge=10, le=3600)
    # Upload slots (presigned PUT URLs for large originals) can be used this long. At most
    # an hour: a URL signed with a Lambda role's temporary credentials dies with them.
    upload_slot_seconds: int = Field(default=900, ge=60, le=3600)
    # Images added by URL may come from private / loopback addresses (a self-hosted service
    # on its own network). Off in AWS: an API caller must not make the function probe a VPC.
    url_fetch_allow_private: bool = True

    # Which embedder ingest and search use: the model in this process, the pixdex inference
    # server over HTTP, or a SageMaker real-time endpoint.
    embedder: Literal["local", "http", "sagemaker"] = "local"
    embedder_url: str | None = None
    # The inference server reads `s3://` references only under these comma-separated
    # prefixes (`s3://bucket/` or `s3://bucket/folder/`); unset: any the role can read.
    embedder_allowed_s3: str | None = None
    sagemaker_endpoint: str | None = None
    aws_region: str | None = None

    @field_validator("embedder_allowed_s3")
    @classmethod
    def _s3_prefixes(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for prefix in value.split(","):
            if not prefix.strip().startswith("s3://") or len(prefix.strip()) <= len("s3://"):
                raise ValueError(
                    f"{prefix.strip()!r} is not an s3:// prefix (e.g. s3://my-bucket/images/)"
                )
        return value

    @property
    def embedder_s3_prefixes(self) -> tuple[str, ...] | None:
        if self.embedder_allowed_s3 is None:
            return None
        return tuple(prefix.strip() for prefix in self.embedder_allowed_s3.split(","))

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def blobs_uri(self) -> str:
        return self.blob_root or (self.home / "blobs").as_uri()

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
