"""Alarms: what a platform team is paged for, all on one encrypted SNS topic.

- dead letters: any message in the DLQ is an object that could not be indexed;
- API 5xx: the HTTP API answered with server errors;
- function errors: ingest or api raising instead of answering;
- endpoint: SageMaker Invocation5XXErrors, and ModelLatency above a threshold.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .inference import VARIANT

# ModelLatency is reported in microseconds; p90 above 2 s means the endpoint is saturated.
MODEL_LATENCY_P90_MICROSECONDS = 2_000_000


class Alarms(Construct):
    """`topic` and the `alarms` on it (by short name)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_email: str | None,
        dlq: sqs.IQueue,
        api_id: str,
        functions: dict[str, lambda_.IFunction],
        endpoint_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        key = kms.Key(
            self,
            "TopicKey",
            enable_key_rotation=True,
            description="pixdex alarm topic",
        )
        # CloudWatch alarms publish to an encrypted topic only if the key lets them.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True)
        if alarm_email is not None:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        self._add(
            "DeadLetters",
            dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            description="Object events failed ingest repeatedly and are in the dead-letter queue",
        )
        self._add(
            "Api5xx",
            cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name="5xx",
                dimensions_map={"ApiId": api_id, "Stage": "$default"},
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=5,
            description="The HTTP API answered 5xx more than 5 times in 5 minutes",
        )
        for name, function in functions.items():
            self._add(
                f"{name}Errors",
                function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                threshold=5,
                description=f"The {name} function raised more than 5 times in 5 minutes",
            )
        endpoint = {"EndpointName": endpoint_name, "VariantName": VARIANT}
        self._add(
            "Endpoint5xx",
            cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="Invocation5XXErrors",
                dimensions_map=endpoint,
                statistic="Sum",
                period=Duration.minutes(5),
            ),
            threshold=0,
            description="The embedder endpoint answered with server errors",
        )
        self._add(
            "EndpointLatency",
            cloudwatch.Metric(
                namespace="AWS/SageMaker",
                metric_name="ModelLatency",
                dimensions_map=endpoint,
                statistic="p90",
                period=Duration.minutes(5),
            ),
            threshold=MODEL_LATENCY_P90_MICROSECONDS,
            description="The embedder's p90 model latency is above 2 s (saturated or unhealthy)",
            periods=3,
        )

    def _add(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        periods: int = 1,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms[name] = alarm
