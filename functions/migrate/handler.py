"""Lambda ``migrate``: the CloudFormation custom resource that applies schema migrations.

Thin: :func:`pixdex.custom_resource.handle_migration_event` applies the migrations on
Create/Update, keeps everything on Delete, and always answers CloudFormation on the
event's ResponseURL (failures included), then returns the answer it sent.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from pixdex.custom_resource import handle_migration_event
from pixdex.db_secret import lambda_settings

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = handle_migration_event(
        event, lambda_settings, log_stream=context.log_stream_name
    )
    logger.info("custom resource answered", status=response.Status, reason=response.Reason)
    return response.model_dump()
