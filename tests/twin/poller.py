"""What Lambda's SQS event source mapping does, over the emulated SQS.

Receive up to the mapping's batch size, hand the batch to the function as an SQS event,
delete the messages that succeeded, and leave the rest alone: they become visible again
after the queue's visibility timeout, and SQS itself moves a message to the DLQ once it
has been received ``maxReceiveCount`` times. A function error (raised, crashed, timed
out) fails the whole batch, exactly as on AWS; without ``ReportBatchItemFailures`` any
reported failure does too.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from tests.twin.runtime import LambdaFunction, LambdaInvokeError
from tests.twin.template import EventSourceConfig


@dataclass
class PollStats:
    batches: int = 0
    received: int = 0
    deleted: int = 0
    item_failures: int = 0
    function_errors: list[str] = field(default_factory=list)


@dataclass
class SqsPoller:
    sqs: Any
    queue_url: str
    queue_arn: str
    function: LambdaFunction
    config: EventSourceConfig
    region: str
    stats: PollStats = field(default_factory=PollStats)
    bodies: list[str] = field(default_factory=list)  # of the messages that succeeded

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attributes.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                "ApproximateFirstReceiveTimestamp": attributes.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                ),
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def poll_once(self, wait_s: int = 1) -> int:
        """One receive + invoke + delete cycle; the number of messages received."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.config.batch_size, 10),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        self.stats.batches += 1
        self.stats.received += len(messages)
        event = {"Records": [self._record(m) for m in messages]}
        try:
            result = self.function.invoke(event).result
        except LambdaInvokeError as exc:
            self.stats.function_errors.append(str(exc))
            return len(messages)  # nothing deleted: the whole batch is retried
        failed = {item["itemIdentifier"] for item in (result or {}).get("batchItemFailures", [])}
        if failed and not self.config.report_batch_item_failures:
            failed = {m["MessageId"] for m in messages}
        self.stats.item_failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
            self.stats.deleted += len(done)
            self.bodies += [m["Body"] for m in done]
        return len(messages)

    def in_queue(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def drain(self, timeout_s: float = 300) -> PollStats:
        """Poll until the queue is empty (retries and dead-lettering included)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.poll_once() == 0 and self.in_queue() == 0:
                return self.stats
        raise TimeoutError(f"queue not drained after {timeout_s:.0f} s: {self.stats}")
