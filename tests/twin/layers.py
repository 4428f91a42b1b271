"""The Lambda Python and the layers, built exactly as ``infra/build_layers.py`` builds them
for deployment (manylinux wheels for the runtime's CPython, from PyPI), plus the boto3 the
Lambda runtime provides. Built once per test session under ``build/twin``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "infra"))

import build_layers  # noqa: E402

LAMBDA_PYTHON = build_layers.LAMBDA_PYTHON


@dataclass(frozen=True)
class LambdaPython:
    executable: Path
    version: str  # "3.12"

    @property
    def is_lambda_runtime_version(self) -> bool:
        return self.version == LAMBDA_PYTHON

    def describe(self) -> str:
        if self.is_lambda_runtime_version:
            return f"Python {self.version} (Lambda's runtime) at {self.executable}"
        return (
            f"Python {LAMBDA_PYTHON} NOT FOUND: the twin runs the functions under Python "
            f"{self.version} at {self.executable}, with layers built for {self.version}"
        )


def find_lambda_python() -> LambdaPython:
    """python3.12 from PATH or pyenv; else this interpreter (the twin still runs)."""
    found = build_layers.find_python(LAMBDA_PYTHON)
    if found is not None:
        return LambdaPython(Path(found), LAMBDA_PYTHON)
    return LambdaPython(Path(sys.executable), f"{sys.version_info[0]}.{sys.version_info[1]}")


@dataclass(frozen=True)
class BuiltLayers:
    library: Path  # the folder Lambda puts on sys.path (…/python)
    dependencies: Path
    runtime: Path  # the runtime's own boto3 (what /var/runtime holds)

    @property
    def layer_paths(self) -> list[Path]:
        return [self.library, self.dependencies]


def build(out: Path, python: LambdaPython) -> BuiltLayers:
    """Run the deployment's layer build for ``python``'s version into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    code = build_layers.main(["--out", str(out), "--python-version", python.version])
    if code != 0:
        raise RuntimeError(f"infra/build_layers.py failed with exit code {code}")
    runtime = out / "runtime"
    if not (runtime / "python" / "boto3").is_dir():
        command = build_layers.pip_command(["boto3"], runtime, python.version)
        subprocess.run(command, check=True)
        # The runtime's own boto3 comes compiled, like everything in the Lambda image.
        build_layers.precompile(runtime / "python", python.version)
    return BuiltLayers(
        library=out / "layer-pixdex" / "python",
        dependencies=out / "layer-deps" / "python",
        runtime=runtime / "python",
    )
