"""Network and database: a VPC with private subnets, Aurora Serverless v2 PostgreSQL with
pgvector, its secret in Secrets Manager, and an RDS Proxy in front.

Only members of `clients` (the Lambda functions' security group) reach the proxy, and only
the proxy reaches the cluster. Functions read the secret (user name and password) and
connect to the proxy endpoint with TLS; the secret's own `host` is the cluster writer,
which they cannot reach.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from constructs import Construct

from .config import InfraConfig
from .lambdas import retention

DATABASE_NAME = "pixdex"
DATABASE_USER = "pixdex"
# A non-default port: scanners looking for 5432 find nothing (clients use the proxy's 5432).
CLUSTER_PORT = 5433
PROXY_PORT = 5432


def build_vpc(scope: Construct, config: InfraConfig) -> ec2.IVpc:
    """A new VPC (public subnets for NAT only, private ones for everything else) or the
    team's existing one, described by attributes so synthesis needs no AWS lookup."""
    if config.vpc_id is not None:
        return ec2.Vpc.from_vpc_attributes(
            scope,
            "Vpc",
            vpc_id=config.vpc_id,
            availability_zones=list(config.vpc_availability_zones),
            private_subnet_ids=list(config.vpc_private_subnet_ids),
        )
    vpc = ec2.Vpc(
        scope,
        "Vpc",
        max_azs=config.max_azs,
        # The API fetches query images by URL, so functions need egress to the internet.
        nat_gateways=config.nat_gateways,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
            ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        ],
        # S3 traffic (images, model artifact) stays off the NAT gateways and their fees.
        gateway_endpoints={
            "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
        },
    )
    flow_logs = logs.LogGroup(
        scope,
        "VpcFlowLogs",
        retention=retention(config.log_retention_days),
        removal_policy=RemovalPolicy.DESTROY,
    )
    vpc.add_flow_log("FlowLogs", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
    return vpc


class Database(Construct):
    """`cluster`, `proxy`, `secret` and `clients` (the security group allowed in)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: InfraConfig, vpc: ec2.IVpc
    ) -> None:
        super().__init__(scope, construct_id)
        private = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.clients = ec2.SecurityGroup(
            self, "Clients", vpc=vpc, description="pixdex functions (database clients)"
        )
        proxy_sg = ec2.SecurityGroup(
            self,
            "ProxySecurityGroup",
            vpc=vpc,
            description="pixdex RDS Proxy",
            allow_all_outbound=False,
        )
        proxy_sg.add_ingress_rule(
            self.clients, ec2.Port.tcp(PROXY_PORT), "pixdex functions to the proxy"
        )
        cluster_sg = ec2.SecurityGroup(
            self,
            "ClusterSecurityGroup",
            vpc=vpc,
            description="pixdex Aurora cluster",
            allow_all_outbound=False,
        )
        # add_proxy opens proxy -> cluster on the cluster port; nothing else gets in.

        major = config.postgres_version.split(".")[0]
        engine = rds.DatabaseClusterEngine.aurora_postgres(
            version=rds.AuroraPostgresEngineVersion.of(config.postgres_version, major)
        )
        readers: list[rds.IClusterInstance] = [
            rds.ClusterInstance.serverless_v2(
                f"Reader{i + 1}",
                # The first reader follows the writer's capacity so a failover lands warm.
                scale_with_writer=i == 0,
                enable_performance_insights=True,
            )
            for i in range(config.db_readers)
        ]
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=engine,
            credentials=rds.Credentials.from_generated_secret(DATABASE_USER),
            default_database_name=DATABASE_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer", enable_performance_insights=True),
            readers=readers,
            serverless_v2_min_capacity=config.min_acu,
            serverless_v2_max_capacity=config.max_acu,
            vpc=vpc,
            vpc_subnets=private,
            security_groups=[cluster_sg],
            port=CLUSTER_PORT,
            storage_encrypted=True,
            iam_authentication=True,
            deletion_protection=config.deletion_protection,
            backup=rds.BackupProps(retention=Duration.days(7)),
            cloudwatch_logs_exports=["postgresql"],
            cloudwatch_logs_retention=retention(config.log_retention_days),
            copy_tags_to_snapshot=True,
            # Deleting the stack keeps a final snapshot of the index.
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        secret = self.cluster.secret
        assert secret is not None  # from_generated_secret always makes one
        self.secret = secret
        self.rotation = self.cluster.add_rotation_single_user(
            automatically_after=Duration.days(30),
            vpc_subnets=private,
        )
        self.proxy = self.cluster.add_proxy(
            "Proxy",
            # Proxy names are unique per account and region; CDK's default is "Proxy".
            db_proxy_name=f"{Stack.of(self).stack_name.lower()}-db-proxy",
            vpc=vpc,
            vpc_subnets=private,
            secrets=[secret],
            security_groups=[proxy_sg],
            require_tls=True,
            # Lambda instances come and go; idle client sessions are closed sooner.
            idle_client_timeout=Duration.minutes(15),
            max_connections_percent=90,
            debug_logging=False,
        )

        # Searches read from the readers through the proxy's read-only endpoint, so they
        # scale out without loading the writer that ingest needs.
        self.read_endpoint: rds.CfnDBProxyEndpoint | None = None
        if config.db_readers > 0:
            self.read_endpoint = rds.CfnDBProxyEndpoint(
                self,
                "ProxyReadOnly",
                db_proxy_name=self.proxy.db_proxy_name,
                db_proxy_endpoint_name=f"{Stack.of(self).stack_name.lower()}-db-read",
                vpc_subnet_ids=vpc.select_subnets(
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ).subnet_ids,
                vpc_security_group_ids=[proxy_sg.security_group_id],
                target_role="READ_ONLY",
            )

    def grant_connect(self, grantee: iam.IGrantable) -> None:
        """Read the credentials (the proxy authenticates them) and nothing else."""
        self.secret.grant_read(grantee)

    @property
    def environment(self) -> dict[str, str]:
        """What the library needs to build its connection URL."""
        return {
            "PIXDEX_DATABASE_SECRET_ARN": self.secret.secret_arn,
            "PIXDEX_DATABASE_HOST": self.proxy.endpoint,
            "PIXDEX_DATABASE_PORT": str(PROXY_PORT),
            "PIXDEX_DATABASE_NAME": DATABASE_NAME,
            # The proxy's certificate (from ACM) is checked against Amazon's root CAs.
            "PIXDEX_DATABASE_SSLMODE": "verify-full",
        }

    @property
    def read_environment(self) -> dict[str, str]:
        """For functions that only search: the read-only endpoint, when there are readers."""
        if self.read_endpoint is None:
            return {}
        return {"PIXDEX_DATABASE_READ_HOST": self.read_endpoint.attr_endpoint}
