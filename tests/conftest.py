"""Shared fixtures: one real embedded PostgreSQL and one real model for the whole session."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psycopg
import pytest
from PIL import Image

from pixdex.config import Settings
from pixdex.storage.connection import close_pools, database_url
from pixdex.storage.embedded import stop_server

if TYPE_CHECKING:
    from tests.twin.stack import Twin

# Nothing in the suite may reach a model hub: fail fast instead of trying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Every test home's server stops with the test session (tests/test_db_linger.py checks the
# default, lingering, behaviour on a home of its own).
os.environ["PIXDEX_DB_LINGER_SECONDS"] = "0"

_counter = itertools.count()


@pytest.fixture(scope="session")
def pixdex_home() -> Iterator[Path]:
    # Not under pytest's tmp_path: pytest prunes old base directories (possibly while a
    # concurrent run's server still uses one) and makes them private to root, which the
    # unprivileged PostgreSQL user cannot traverse. Short, too: the socket lives inside.
    home = Path(tempfile.mkdtemp(prefix="pixdex-test-"))
    yield home
    close_pools()
    stop_server(home / "pgdata")
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(pixdex_home: Path) -> Settings:
    return Settings(home=pixdex_home, batch_size=8, decode_workers=2)


@pytest.fixture(scope="session")
def cli_env(pixdex_home: Path) -> dict[str, str]:
    """Environment for running the real ``pixdex`` executable against the test home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXDEX_")}
    env["PIXDEX_HOME"] = str(pixdex_home)
    env["PIXDEX_DB_LINGER_SECONDS"] = "0"
    return env


@pytest.fixture
def dataset_name() -> str:
    """A fresh dataset per test so tests never see each other's images."""
    return f"ds-{os.getpid()}-{next(_counter)}"


def photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    names = ("chelsea", "coffee", "astronaut", "rocket", "camera", "coins", "hubble_deep_field")
    return {name: photo(name) for name in names}


def pytest_report_header() -> str:
    from tests.twin.layers import find_lambda_python

    return f"lambda twin: functions run under {find_lambda_python().describe()}"


@pytest.fixture(scope="session")
def twin(pixdex_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """The AWS stack's twin (tests/twin), deployed once for the session."""
    from tests.twin import layers
    from tests.twin.stack import running_twin
    from tests.twin.template import read_stack, synthesize_template

    python = layers.find_lambda_python()
    built = layers.build(layers.ROOT / "build" / "twin", python)
    template = synthesize_template(
        built.library.parent, built.dependencies.parent, tmp_path_factory.mktemp("synth")
    )
    with running_twin(read_stack(template), python, built, model_home=pixdex_home) as running:
        yield running


@pytest.fixture
def fresh_database(settings: Settings) -> Iterator[str]:
    """A new, empty database in the embedded server; its URL."""
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    admin = database_url(settings)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin.partition("?")
    yield base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
