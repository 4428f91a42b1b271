"""Loading a handler from functions/ the way Lambda does, and a Lambda context for it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_handler(function: str) -> ModuleType:
    """functions/<function>/handler.py as its own module (functions/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"pixdex_fn_{function}", ROOT / "functions" / function / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    """The attributes Powertools' Logger reads from a real context."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "5d6e7f80-0000-4000-8000-000000000001"
    log_stream_name: str = "2024/05/01/[$LATEST]abc"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
