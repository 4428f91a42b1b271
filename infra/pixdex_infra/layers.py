"""The two Lambda layers: the pixdex library, and its third-party runtime dependencies.

By default synthesis builds both (CDK local bundling) with the functions of
`infra/build_layers.py`, so `cdk deploy` cannot ship a stale or forgotten build; Docker is
only CDK's fallback for a machine whose Python has no pip. Context `pixdexLayerDir` /
`depsLayerDir` instead name prebuilt folders, which synthesis only hashes (no network).
Lambda wants Python code under a `python/` prefix. aws-cdk-lib, onnxruntime and torch
never go into either layer: the functions call the GPU endpoint for inference.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path
from typing import Any, Literal

import build_layers
import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    BundlingOutput,
    FileSystem,
    ILocalBundling,
    RemovalPolicy,
)
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .config import InfraConfigError

LayerKind = Literal["library", "dependencies"]
BUILD_HINT = (
    "build it with `.venv/bin/python infra/build_layers.py --out DIR`, or drop the context "
    "key to let synthesis bundle the layer"
)
_PYCACHE = ["**/__pycache__", "**/*.pyc"]
_SCRIPT = Path(build_layers.__file__).resolve()
log = logging.getLogger(__name__)


def require_layer_dir(path: Path, context_key: str, marker: str) -> Path:
    """Fail synthesis with a fix, not a CloudFormation error, when a layer is not built."""
    if not (path / "python" / marker).exists():
        raise InfraConfigError(
            f"Lambda layer folder {path} has no python/{marker}: {BUILD_HINT} "
            f"(or point context {context_key} at a built layer folder)"
        )
    return path


def layer_fingerprint(
    kind: LayerKind,
    *,
    library: Path = build_layers.LIBRARY_SOURCE,
    pyproject: Path = build_layers.REPO_ROOT / "pyproject.toml",
    python_version: str = build_layers.LAMBDA_PYTHON,
) -> str:
    """The CUSTOM asset hash of a bundled layer: exactly the inputs of its build.

    Not SOURCE: each layer is built from a few files scattered over the repository (the
    script, pyproject's dependency list, the library), and the repository root as a SOURCE
    folder would hash .venv and build outputs. Not OUTPUT: that would run pip on every
    synth, and a new upstream patch release would silently publish a new layer version.
    With this hash CDK skips bundling when cdk.out already holds the layer, and a layer
    changes only when the library, the runtime requirements or the build script change.
    """
    digest = hashlib.sha256(f"{kind}\n".encode())
    digest.update(_SCRIPT.read_bytes())  # exclusions, platforms, pip flags
    if kind == "library":
        # Content of every file and its relative path; bytecode caches are not shipped.
        digest.update(FileSystem.fingerprint(str(library), exclude=_PYCACHE).encode())
    else:
        # Only the requirements pip sees: a version bump or a new dev dependency in
        # pyproject.toml must not publish a new 100 MB layer.
        requirements = build_layers.lambda_requirements(pyproject)
        digest.update(f"{python_version}\n{chr(10).join(requirements)}".encode())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class LocalLayerBundler:
    """Builds one layer into CDK's bundling folder with this machine's Python and pip.

    CDK calls `try_bundle(output_dir, options)` (a positional BundlingOptions struct, not the
    keyword arguments the generated stub shows). `reason` says why it last declined.
    """

    def __init__(
        self,
        kind: LayerKind,
        *,
        python: str = sys.executable,
        python_version: str = build_layers.LAMBDA_PYTHON,
        library: Path = build_layers.LIBRARY_SOURCE,
    ) -> None:
        self.kind = kind
        self.python = python
        self.python_version = python_version
        self.library = library
        self.reason: str | None = None

    def try_bundle(self, output_dir: str, options: Any = None, **_: Any) -> bool:
        target = Path(output_dir)
        if self.kind == "library":
            build_layers.build_library_layer(self.library, target, self.python_version)
            return True
        problem = build_layers.pip_unavailable(self.python)
        if problem is not None:
            self.reason = f"cannot bundle the dependency layer locally: {problem}"
            log.warning("%s; CDK falls back to Docker bundling", self.reason)
            return False
        # A failing pip or a forbidden module raises: Docker would fail the same way, later.
        print("bundling the dependency layer with pip (cached in cdk.out)", file=sys.stderr)
        build_layers.build_dependency_layer(target, self.python_version, python=self.python)
        size = build_layers.folder_bytes(target)
        if size > build_layers.MAX_UNZIPPED_BYTES:
            raise build_layers.LayerBuildError(
                f"dependency layer is {size / 2**20:.0f} MiB unzipped, over Lambda's 250 MiB"
            )
        return True


def bundled_code(kind: LayerKind, bundler: LocalLayerBundler) -> lambda_.Code:
    """The layer built at synthesis; Docker runs the same script in Lambda's build image
    only when the local bundler declines."""
    folder, flags = ("layer-pixdex", "--skip-deps") if kind == "library" else ("layer-deps", "")
    fallback = (
        f"python /asset-input/infra/build_layers.py --out /tmp/layers {flags} "
        f"--python-version {bundler.python_version} && "
        f"cp -r /tmp/layers/{folder}/python /asset-output/"
    )
    return lambda_.Code.from_asset(
        str(build_layers.REPO_ROOT),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=layer_fingerprint(
            kind, library=bundler.library, python_version=bundler.python_version
        ),
        bundling=BundlingOptions(
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            local=bundler,
            command=["bash", "-c", fallback],
            # The container runs as the host user, who has no home there (its own /tmp).
            environment={"HOME": "/tmp", "PIP_CACHE_DIR": "/tmp/pip-cache"},  # noqa: S108
            output_type=BundlingOutput.NOT_ARCHIVED,
        ),
    )


def prebuilt_code(path: Path, context_key: str, marker: str) -> lambda_.Code:
    # Bytecode is shipped: build_layers.py compiles it for the runtime's Python on purpose.
    return lambda_.Code.from_asset(str(require_layer_dir(path, context_key, marker)))


class PixdexLayers(Construct):
    """`library` (layers/pixdex) and `dependencies` (pydantic, psycopg, numpy, ...).

    A folder given (context pixdexLayerDir / depsLayerDir) is uploaded as built; None
    bundles that layer during synthesis.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pixdex_dir: Path | None = None,
        deps_dir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        super().__init__(scope, construct_id)
        library_code = (
            bundled_code("library", LocalLayerBundler("library", python=python))
            if pixdex_dir is None
            else prebuilt_code(pixdex_dir, "pixdexLayerDir", "pixdex/__init__.py")
        )
        deps_code = (
            bundled_code("dependencies", LocalLayerBundler("dependencies", python=python))
            if deps_dir is None
            else prebuilt_code(deps_dir, "depsLayerDir", "")
        )
        runtimes = [lambda_.Runtime.PYTHON_3_12]
        self.library = lambda_.LayerVersion(
            self,
            "Library",
            code=library_code,
            compatible_runtimes=runtimes,
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="pixdex library (layers/pixdex)",
            # Old versions stay so a rollback still finds the layer its functions name.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=deps_code,
            compatible_runtimes=runtimes,
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="pixdex third-party runtime dependencies (no onnxruntime)",
            removal_policy=RemovalPolicy.RETAIN,
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.dependencies, self.library]
