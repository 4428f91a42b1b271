"""Lambda ``ingest``: SQS batches of S3 object events in, images indexed or removed.

Thin: each SQS record's body goes to :func:`pixdex.app.bucket_ingest.handle_queue_message` (the
library does parsing, ordering, ingest and removal, and indexes images the API added).
Powertools reports the records that raised as ``batchItemFailures``, so only those are
retried (then dead-lettered); the others are deleted from the queue. A batch in which
every record failed is reported the same way, not raised, so one poison message never
fails its neighbours' retries.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixdex.app.bucket_ingest import MessageOutcome, handle_queue_message
from pixdex.db_secret import lambda_settings

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> MessageOutcome:
    try:
        outcome = handle_queue_message(
            record.body,
            lambda_settings(),
            receive_count=int(record.attributes.approximate_receive_count),
        )
    except Exception:
        # The batch reports only the message id; without this line the reason a message is
        # retried (and finally dead-lettered) would appear nowhere.
        logger.exception("message failed; it will be retried", message_id=record.message_id)
        raise
    logger.info("message applied", message_id=record.message_id, outcome=outcome.model_dump())
    return outcome


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
