"""The two Lambda layers: the pixdex library, and its third-party runtime dependencies.

Both are folders built by `infra/build_layers.py` (Lambda wants Python code under a
`python/` prefix). Synthesis only hashes them, so it needs neither Docker nor network.
aws-cdk-lib, onnxruntime and torch never go into either: the functions call the GPU
endpoint for inference.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .config import InfraConfigError

BUILD_HINT = "run `.venv/bin/python infra/build_layers.py` first"


def require_layer_dir(path: Path, context_key: str, marker: str) -> Path:
    """Fail synthesis with a fix, not a CloudFormation error, when a layer is not built."""
    if not (path / "python" / marker).exists():
        raise InfraConfigError(
            f"Lambda layer folder {path} has no python/{marker}: {BUILD_HINT} "
            f"(or point context {context_key} at a built layer folder)"
        )
    return path


class PixdexLayers(Construct):
    """`library` (layers/pixdex) and `dependencies` (pydantic, psycopg, numpy, ...)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, pixdex_dir: Path, deps_dir: Path
    ) -> None:
        super().__init__(scope, construct_id)
        runtimes = [lambda_.Runtime.PYTHON_3_12]
        self.library = lambda_.LayerVersion(
            self,
            "Library",
            code=lambda_.Code.from_asset(
                str(require_layer_dir(pixdex_dir, "pixdexLayerDir", "pixdex/__init__.py")),
                exclude=["**/__pycache__", "**/*.pyc"],
            ),
            compatible_runtimes=runtimes,
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="pixdex library (layers/pixdex)",
            # Old versions stay so a rollback still finds the layer its functions name.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(
                str(require_layer_dir(deps_dir, "depsLayerDir", "")),
                exclude=["**/__pycache__", "**/*.pyc"],
            ),
            compatible_runtimes=runtimes,
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="pixdex third-party runtime dependencies (no onnxruntime)",
            removal_policy=RemovalPolicy.RETAIN,
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.dependencies, self.library]
