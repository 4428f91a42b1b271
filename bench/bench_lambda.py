"""The ``api`` function in the Lambda-shaped twin: cold start and warm search latency.

The twin (tests/twin) runs the function as Lambda does: a Python 3.12 process with only
the function folder, the built layers and boto3 on ``sys.path``, the stack's environment,
the database behind the Secrets Manager secret (moto server), the GPU endpoint behind the
SageMaker runtime API (``pixdex embedder serve``). A dataset is indexed through the bucket
(S3 -> SQS -> ``ingest``) first.

Measured:

1. **Cold start**, ``--cold`` times: a new sandbox process, from spawn to the first answer
   of a search, split into *init* (interpreter start + ``import handler``: what Lambda
   bills as Init Duration) and the *first invocation* (settings, reading the secret,
   opening the pool, the search). Peak RSS of the sandbox.
2. **Warm** latency, ``--warm`` requests each, of the function alone (the handler call
   inside the warm sandbox, as Lambda's Duration): a prompt search, a search like an
   indexed image (id), a search by a query image (base64 JPEG: one SageMaker round trip),
   and ``GET /v1/images/{id}``.
3. **What the sandbox imports**: the import time of the handler by top-level package
   (``python -X importtime``), so avoidable imports show.

    .venv/bin/python bench/bench_lambda.py --cold 5 --warm 50

Results: a markdown table on stdout and ``bench/results/lambda.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import ImageOps
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pixdex.app.service.keys import create_key  # noqa: E402
from pixdex.config import Settings  # noqa: E402
from pixdex.server.events import build_event  # noqa: E402
from tests.conftest import photo  # noqa: E402
from tests.twin import layers  # noqa: E402
from tests.twin.photos import dataset_drops  # noqa: E402
from tests.twin.stack import IMAGES_BUCKET, Twin, running_twin  # noqa: E402
from tests.twin.template import read_stack, synthesize_template  # noqa: E402

DATASET = "bench"


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "min": round(ordered[0], 2),
    }


def _invoke(twin: Twin, body: dict[str, Any], key: str) -> tuple[float, bool, float | None]:
    """(handler ms, cold?, init ms) of one search, checked for success."""
    event = build_event(
        "POST", "/v1/search",
        [("content-type", "application/json"), ("authorization", f"Bearer {key}")],
        json.dumps(body).encode(), "203.0.113.7",
    )
    invocation = twin.functions["api"].invoke(event)
    status = invocation.result["statusCode"]
    if status != 200:
        raise RuntimeError(f"search {body} answered {status}: {invocation.result.get('body')}")
    return invocation.duration_ms, invocation.cold, invocation.init_ms


def cold_starts(twin: Twin, key: str, count: int) -> list[dict[str, float]]:
    function = twin.functions["api"]
    found = []
    for _ in range(count):
        function.kill()
        started = time.perf_counter()
        first_ms, cold, init_ms = _invoke(twin, {"in_dataset": DATASET, "prompt": "a cat"}, key)
        total_ms = (time.perf_counter() - started) * 1000
        assert cold and init_ms is not None
        found.append({
            "init_ms": init_ms, "first_invocation_ms": first_ms, "total_ms": total_ms,
            "rss_mb": function.last_max_rss_mb,
        })
    return found


def warm(twin: Twin, key: str, count: int) -> dict[str, dict[str, float]]:
    listing = twin.api("POST", "/v1/search", {"in_dataset": DATASET, "limit": 5}, key=key)
    some_id = listing.json()["results"][0]["id"]
    buffer = io.BytesIO()
    ImageOps.mirror(photo("chelsea")).save(buffer, "JPEG", quality=85)
    query = base64.b64encode(buffer.getvalue()).decode()
    kinds = {
        "prompt search": {"in_dataset": DATASET, "prompt": "a cup of coffee", "limit": 10},
        "like an indexed image": {"in_dataset": DATASET, "like_image": some_id, "limit": 10},
        "query image (base64)": {"in_dataset": DATASET, "image": query, "limit": 10},
    }
    results: dict[str, dict[str, float]] = {}
    for name, body in kinds.items():
        _invoke(twin, body, key)  # the first of a kind may load something once
        results[name] = _percentiles([_invoke(twin, body, key)[0] for _ in range(count)])
        results[name]["rss_after_mb"] = round(twin.functions["api"].last_max_rss_mb, 1)
    event = build_event("GET", f"/v1/images/{some_id}", [("authorization", f"Bearer {key}")],
                        b"", "203.0.113.7")
    durations = [twin.functions["api"].invoke(event).duration_ms for _ in range(count)]
    results["GET /v1/images/{id}"] = _percentiles(durations)
    results["GET /v1/images/{id}"]["rss_after_mb"] = round(
        twin.functions["api"].last_max_rss_mb, 1
    )
    return results


def import_profile(twin: Twin, top: int = 12) -> list[dict[str, Any]]:
    """Cumulative import time of the api handler by top-level package (-X importtime)."""
    spec = twin.functions["api"].spec
    paths = [str(spec.task_root), *map(str, spec.layers), str(spec.runtime_dir)]
    code = f"import sys; sys.path[:0] = {paths!r}; import handler"
    run = subprocess.run(
        [str(spec.python), "-I", "-S", "-X", "importtime", "-c", code],
        capture_output=True, text=True, env=twin.functions["api"].sandbox_environment(),
        cwd=spec.task_root, check=True,
    )
    per_package: dict[str, float] = defaultdict(float)
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        if self_us.isdigit():  # the header line says "self [us]"
            per_package[name.split(".")[0]] += int(self_us) / 1000
    ranked = sorted(per_package.items(), key=lambda item: -item[1])[:top]
    return [{"package": name, "self_ms": round(ms, 1)} for name, ms in ranked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lambda.json")
    args = parser.parse_args()

    python = layers.find_lambda_python()
    built = layers.build(ROOT / "build" / "twin", python)
    scratch = Path(tempfile.mkdtemp(prefix="pixdex-bench-lambda-"))
    template = synthesize_template(built.library.parent, built.dependencies.parent, scratch)
    with running_twin(read_stack(template), python, built, model_home=scratch / "home") as twin:
        s3 = twin.client("s3")
        for drop in [d for d in dataset_drops(DATASET) if d.valid]:
            s3.put_object(Bucket=IMAGES_BUCKET, Key=drop.key, Body=drop.data)
        twin.poller.drain()
        key = create_key(Settings(database_url=SecretStr(twin.database.url)), "default").key
        cold = cold_starts(twin, key, args.cold)
        hot = warm(twin, key, args.warm)
        peak_rss = twin.functions["api"].last_max_rss_mb
        imports = import_profile(twin)

    result: dict[str, Any] = {
        "python": python.describe(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "cold_start": {k: _percentiles([c[k] for c in cold]) for k in cold[0]},
        "warm_ms": hot,
        "peak_rss_mb": round(peak_rss, 1),
        "import_self_ms_by_package": imports,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"api function in the twin ({python.describe()})\n")
    print("| cold start | p50 ms | p95 ms | min ms |\n|---|---:|---:|---:|")
    for name, stats in result["cold_start"].items():
        print(f"| {name} | {stats['p50']} | {stats['p95']} | {stats['min']} |")
    print("\n| warm (handler duration) | p50 ms | p95 ms | min ms | peak RSS after, MB |")
    print("|---|---:|---:|---:|---:|")
    for name, stats in hot.items():
        print(
            f"| {name} | {stats['p50']} | {stats['p95']} | {stats['min']} "
            f"| {stats['rss_after_mb']} |"
        )
    print(f"\npeak RSS {peak_rss:.0f} MB; import time by package (self, ms):")
    print(", ".join(f"{i['package']} {i['self_ms']}" for i in imports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
