"""A Lambda function of the twin: one warm Python 3.12 sandbox process, invoked per event.

The process is :mod:`tests.twin.bootstrap` under the Lambda Python (see
:mod:`tests.twin.layers`), started with ``-I -S``: no site-packages, no ``PYTHON*``
variables, only the function folder, the built layers and the runtime's boto3 on
``sys.path``. Its environment is the function's environment from the synthesized template
plus what the Lambda service itself sets, plus the twin's endpoint overrides. An invocation
that outlives the function's timeout kills the sandbox, as Lambda does; the next
invocation starts a new one (a cold start).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")


class LambdaInvokeError(RuntimeError):
    """The function raised (or failed to initialise, or timed out): Lambda's error answer."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('errorType')}: {error.get('errorMessage')}")
        self.error = error


@dataclass
class FunctionSpec:
    """Everything needed to start one function's sandbox."""

    name: str
    python: Path
    task_root: Path
    layers: list[Path]
    runtime_dir: Path
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int
    region: str
    log_file: Path


@dataclass
class Invocation:
    result: Any
    duration_ms: float
    max_rss_mb: float
    modules: list[str]
    cold: bool
    init_ms: float | None = None


@dataclass
class LambdaFunction:
    """One function; ``invoke`` reuses the warm sandbox, starting one when there is none."""

    spec: FunctionSpec
    cold_starts: int = 0
    # Top-level modules the sandbox had imported after its latest invocation.
    loaded_modules: set[str] = field(default_factory=set)
    last_max_rss_mb: float = 0.0
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _init_ms: float | None = None

    def sandbox_environment(self) -> dict[str, str]:
        spec = self.spec
        return {
            # What the Lambda service sets in every python3.12 sandbox.
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "LAMBDA_TASK_ROOT": str(spec.task_root),
            "LAMBDA_RUNTIME_DIR": str(spec.runtime_dir),
            "_HANDLER": "handler.handler",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            # The execution role's credentials (moto accepts any).
            "AWS_ACCESS_KEY_ID": "twin",
            "AWS_SECRET_ACCESS_KEY": "twin",
            "AWS_SESSION_TOKEN": "twin",
            **spec.environment,
        }

    def start(self) -> None:
        spec = self.spec
        payload = {
            "function_name": spec.name,
            "task_root": str(spec.task_root),
            "layers": [str(p) for p in spec.layers],
            "runtime_dir": str(spec.runtime_dir),
            "timeout_s": spec.timeout_s,
            "memory_mb": spec.memory_mb,
            "region": spec.region,
        }
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = spec.log_file.open("a")
        self._process = subprocess.Popen(
            # -B: Lambda's /opt and /var/task are read-only, so no bytecode is ever cached there.
            [str(spec.python), "-I", "-S", "-B", str(BOOTSTRAP), json.dumps(payload)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=self.sandbox_environment(),
            cwd=spec.task_root,
        )
        log.close()
        ready = self._read_line(timeout=spec.timeout_s + 60)
        self._init_ms = float(ready["init_ms"])
        self.cold_starts += 1

    def _read_line(self, timeout: float) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        try:
            if not selector.select(timeout):
                self.kill()
                return {"timed_out": True}
        finally:
            selector.close()
        line = process.stdout.readline()
        if not line:
            code = process.wait()
            self._process = None
            tail = self.spec.log_file.read_text(errors="replace")[-3000:]
            raise LambdaInvokeError(
                {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"the sandbox exited with {code}; its log ends:\n{tail}",
                }
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def invoke(self, event: dict[str, Any]) -> Invocation:
        cold = self._process is None or self._process.poll() is not None
        if cold:
            self.start()
        process = self._process
        assert process is not None and process.stdin is not None
        init_ms = self._init_ms if cold else None
        request = {"event": event, "request_id": str(uuid.uuid4())}
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        started = time.monotonic()
        answer = self._read_line(timeout=self.spec.timeout_s)
        if answer.get("timed_out"):
            elapsed = time.monotonic() - started
            raise LambdaInvokeError(
                {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"timed out after {elapsed:.1f} s",
                }
            )
        self.loaded_modules = set(answer.get("modules", []))
        self.last_max_rss_mb = float(answer.get("max_rss_mb", 0.0))
        if "error" in answer:
            raise LambdaInvokeError(answer["error"])
        return Invocation(
            result=answer["result"],
            duration_ms=answer["duration_ms"],
            max_rss_mb=answer["max_rss_mb"],
            modules=answer["modules"],
            cold=cold,
            init_ms=init_ms,
        )

    def kill(self) -> None:
        """Drop the sandbox (Lambda recycles it); the next invocation is a cold start."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            if self._process.stdin is not None:
                self._process.stdin.close()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
