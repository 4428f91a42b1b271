"""The ingest function: drains the bucket's object-event queue into the index.

SQS batches of S3 ObjectCreated / ObjectRemoved events; the handler reports partial batch
failures, so one poison message is retried (and dead-lettered) alone. `max_concurrency`
caps how many batches run at once, which is what protects the database and the endpoint.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .lambdas import FunctionDefaults, PixdexFunction


class IngestFunction(Construct):
    """`function` (functions/ingest) subscribed to `queue`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        defaults: FunctionDefaults,
        queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        config = defaults.config
        self.function = PixdexFunction(
            self,
            "Handler",
            name="ingest",
            defaults=defaults,
            timeout=Duration.seconds(config.ingest_timeout_seconds),
            memory_mb=config.ingest_memory_mb,
            # The last delivery of an index job marks its images failed (not pending forever).
            environment={"PIXDEX_INDEX_MAX_RECEIVES": str(config.dlq_max_receive_count)},
        )
        self.event_source = sources.SqsEventSource(
            queue,
            batch_size=config.ingest_batch_size,
            max_batching_window=Duration.seconds(config.ingest_max_batching_window_seconds),
            max_concurrency=config.ingest_max_concurrency,
            report_batch_item_failures=True,
        )
        self.function.function.add_event_source(self.event_source)
