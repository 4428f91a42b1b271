"""The images bucket and the queue its object events go to, and the API's uploads bucket.

Dropping a file into the images bucket (or deleting one) puts an S3 event on the SQS
queue; the ingest function drains it. Messages that keep failing move to the dead-letter
queue after `dlqMaxReceiveCount` receives, where an alarm sees them.

Images sent through the HTTP API are stored in a separate bucket (in the images bucket a
key's first segment names its dataset). The API queues index jobs for what it stores
itself, so that bucket notifies the queue only of files PUT to upload slots (presigned
URLs the API hands out for large originals; see pixdex.app.service.slots): those arrive
without the API seeing them.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import InfraConfig

# PIXDEX_BLOB_ROOT is s3://<uploads bucket>/<this>; slots are <this>/slots/... under it.
API_BLOB_PREFIX = "uploads"


# The web app reads originals through presigned GET links (GET /v1/images/{id}/file answers
# a 307) and PUTs large files to presigned upload slots, from the API's own origin. A
# presigned URL is its own credential, so any origin may use one; without these rules the
# browser refuses S3's answers.
_PRESIGNED_GET = s3.CorsRule(
    allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD], allowed_origins=["*"],
    max_age=3600,
)
_PRESIGNED_PUT = s3.CorsRule(
    allowed_methods=[s3.HttpMethods.PUT], allowed_origins=["*"],
    allowed_headers=["content-type"], max_age=3600,
)


class ImageStorage(Construct):
    """`bucket` (images), `uploads` (the API's), `access_logs`, `queue` and `dlq`."""

    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Images",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="images/",
            cors=[_PRESIGNED_GET],
            # Versioning keeps overwritten and deleted images recoverable for a while,
            # without paying for every old version forever.
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            # Images are the customer's data: deleting the stack never deletes them.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.uploads = s3.Bucket(
            self,
            "Uploads",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="uploads/",
            cors=[_PRESIGNED_GET, _PRESIGNED_PUT],
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.dlq = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "ObjectEvents",
            # SSE-SQS, not a KMS key: S3 can publish to it without a key policy.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's rule for SQS event sources: at least 6x the function timeout, so a
            # message is not redelivered while a slow batch is still being indexed.
            visibility_timeout=Duration.seconds(
                6 * config.ingest_timeout_seconds + config.ingest_max_batching_window_seconds
            ),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dlq, max_receive_count=config.dlq_max_receive_count
            ),
        )
        destination = s3n.SqsDestination(self.queue)
        self.bucket.add_event_notification(s3.EventType.OBJECT_CREATED, destination)
        # With versioning, a plain DELETE creates a delete marker: ObjectRemoved:* covers it.
        self.bucket.add_event_notification(s3.EventType.OBJECT_REMOVED, destination)
        self.uploads.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            destination,
            s3.NotificationKeyFilter(prefix=f"{API_BLOB_PREFIX}/slots/"),
        )
        self.api_blob_root = f"s3://{self.uploads.bucket_name}/{API_BLOB_PREFIX}"
