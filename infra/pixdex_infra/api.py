"""The HTTP API: API Gateway (HTTP API, payload format 2.0) in front of the `api` function.

Every route goes to the one function, whose Powertools resolver routes and authenticates
(workspace API keys). The `$default` stage throttles and writes a JSON access log.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw_rest
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

from .lambdas import FunctionDefaults, PixdexFunction, retention

# API Gateway's $context variables; requestId ties a log line to the function's logs.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "userAgent": "$context.identity.userAgent",
    }
)


class HttpApi(Construct):
    """`function` (functions/api), `api` (the HTTP API), `stage` and `url`."""

    def __init__(
        self, scope: Construct, construct_id: str, *, defaults: FunctionDefaults, blob_root: str
    ) -> None:
        super().__init__(scope, construct_id)
        config = defaults.config
        self.function = PixdexFunction(
            self,
            "Handler",
            name="api",
            defaults=defaults,
            # API Gateway gives up after 29 s; a longer function timeout buys nothing.
            timeout=Duration.seconds(29),
            memory_mb=config.api_memory_mb,
            reserved_concurrency=config.api_reserved_concurrency,
            # Images uploaded through the API are stored here (and indexed from here).
            environment={
                "PIXDEX_BLOB_ROOT": blob_root,
                # Images added by URL must not reach into the VPC (SSRF).
                "PIXDEX_URL_FETCH_ALLOW_PRIVATE": "false",
                "PIXDEX_KEY_REQUESTS_PER_SECOND": f"{config.api_key_rate:g}",
                "PIXDEX_KEY_BURST": str(config.api_key_burst),
            },
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        integration = integrations.HttpLambdaIntegration(
            "Function",
            self.function.function,
            payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
            timeout=Duration.seconds(29),
        )
        self.api = apigw.HttpApi(
            self,
            "Api",
            description="pixdex image search API",
            create_default_stage=False,
            default_integration=integration,
        )
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=config.api_throttle_rate, burst_limit=config.api_throttle_burst
            ),
            access_log_settings=_AccessLogSettings(self.access_logs),
            detailed_metrics_enabled=True,
        )
        self.url = self.stage.url


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogSettings:
    """HttpStage takes access log settings as an interface; this is the plain value."""

    def __init__(self, group: logs.ILogGroup) -> None:
        self._destination = apigw.LogGroupLogDestination(group)

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_rest.AccessLogFormat:
        return apigw_rest.AccessLogFormat.custom(ACCESS_LOG_FORMAT)
