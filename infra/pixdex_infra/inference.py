"""The GPU endpoint: the `functions/embedder` image on a SageMaker real-time endpoint.

The image is built from the folder by `cdk deploy` (DockerImageAsset; synthesis only hashes
it). An optional model artifact (`modelArtifactS3Uri`, a model.tar.gz) is unpacked by
SageMaker into /opt/ml/model; without one, the image's built-in model is used. The endpoint
scales on invocations per instance between the configured bounds.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, Duration, IgnoreMode, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from .config import InfraConfig, InfraConfigError

VARIANT = "AllTraffic"
# Without a Dockerfile-specific ignore file: never hash these into the image's fingerprint.
DEFAULT_IGNORE = (".git", ".venv", "build", "infra/cdk.out", "**/__pycache__", "**/*.pyc")


def docker_ignore_patterns(dockerfile: Path) -> list[str]:
    """The patterns of `<Dockerfile>.dockerignore` (BuildKit reads the same file)."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not ignore.is_file():
        return list(DEFAULT_IGNORE)
    lines = (line.strip() for line in ignore.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class Embedder(Construct):
    """`endpoint_name`, `grant_invoke(grantee)`, and the pieces behind them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: InfraConfig,
        vpc: ec2.IVpc,
        images: list[s3.IBucket],
    ) -> None:
        super().__init__(scope, construct_id)
        context = config.embedder_build_context
        dockerfile = context / config.embedder_dockerfile
        if not dockerfile.is_file():
            raise InfraConfigError(
                f"{dockerfile} is missing: the embedder image is built from it (context "
                "embedderBuildContext is the build folder, embedderDockerfile the file in it)"
            )
        stack = Stack.of(self)
        self._model = config.model
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(context),
            file=config.embedder_dockerfile,
            platform=ecr_assets.Platform.LINUX_AMD64,
            # Hash (and stage) only what the image build reads, not the whole repository.
            exclude=docker_ignore_patterns(dockerfile),
            ignore_mode=IgnoreMode.DOCKER,
        )
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="pixdex embedder endpoint: pull its image, read images and the model",
        )
        self.image.repository.grant_pull(self.role)
        # The container reads images by S3 key (payloads above 6 MB cannot be sent inline).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[bucket.arn_for_objects("*") for bucket in images],
            )
        )
        artifact = config.model_artifact
        if artifact is not None:
            bucket, key = artifact
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{bucket}/{key}"],
                )
            )
        log_groups = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name="/aws/sagemaker/Endpoints/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[log_groups],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"])
        )
        # SageMaker attaches the endpoint's network interfaces in our private subnets.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                resources=["*"],
            )
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="pixdex embedder endpoint (no inbound; out: HTTPS only)",
            allow_all_outbound=False,
        )
        # The container's own traffic is S3 reads over HTTPS (through the VPC's gateway
        # endpoint); SageMaker pulls the image and the artifact and ships logs outside it.
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "S3 over HTTPS: images read by key"
        )
        subnets = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        container = sagemaker.CfnModel.ContainerDefinitionProperty(
            image=self.image.image_uri,
            model_data_url=config.model_artifact_s3_uri,
            # PIXDEX_HOME and PIXDEX_PROVIDERS come from the image (its ONNX graph is
            # prebuilt into that home); only what the deployment decides is set here.
            environment={
                "PIXDEX_MODEL": config.model,
                "PIXDEX_MODEL_ARTIFACT_DIR": "/opt/ml/model",
                # Only the stack's own buckets, whatever a caller names (the role allows no
                # more either; this also keeps other buckets' errors out of its answers).
                "PIXDEX_EMBEDDER_ALLOWED_S3": ",".join(
                    f"s3://{bucket.bucket_name}/" for bucket in images
                ),
                "LOG_LEVEL": config.log_level,
            },
        )
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=container,
            vpc_config=sagemaker.CfnModel.VpcConfigProperty(
                security_group_ids=[self.security_group.security_group_id],
                subnets=subnets.subnet_ids,
            ),
        )
        # The role's policy must exist before SageMaker validates the model's access.
        self.model.node.add_dependency(self.role)
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=config.embedder_min_instances,
                    instance_type=config.embedder_instance_type,
                    initial_variant_weight=1.0,
                    # Large image batches and CUDA start-up take a while on a cold instance.
                    container_startup_health_check_timeout_in_seconds=600,
                    model_data_download_timeout_in_seconds=900,
                )
            ],
        )
        # A fixed, lowercase name: SageMaker ARNs use it lowercased, and the functions'
        # invoke permission names it exactly.
        self.endpoint_name = f"{stack.stack_name.lower()}-embedder"
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )
        self.endpoint_arn = stack.format_arn(
            service="sagemaker", resource="endpoint", resource_name=self.endpoint_name
        )
        self.scaling = appscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=config.embedder_min_instances,
            max_capacity=config.embedder_max_instances,
        )
        self.scaling.node.add_dependency(self.endpoint)
        self.scaling.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=config.embedder_invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            # GPU instances take minutes to start: scale out fast, in slowly.
            scale_out_cooldown=Duration.minutes(2),
            scale_in_cooldown=Duration.minutes(10),
        )

    def grant_invoke(self, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["sagemaker:InvokeEndpoint"],
            resource_arns=[self.endpoint_arn],
        )

    @property
    def environment(self) -> dict[str, str]:
        return {
            "PIXDEX_EMBEDDER": "sagemaker",
            "PIXDEX_SAGEMAKER_ENDPOINT": self.endpoint_name,
            "PIXDEX_AWS_REGION": Stack.of(self).region,
            "PIXDEX_MODEL": self._model,
        }
