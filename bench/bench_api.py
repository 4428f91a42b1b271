"""The HTTP API under load: concurrent clients against a real ``pixdex serve`` process.

Setup (its own ``PIXDEX_HOME`` under /tmp): ``--images`` pictures (scikit-image photos
with random crops, flips, rotations and brightness changes) are added through the API
itself (JSON base64, 64 per call), and an API key is created.

Measured:

1. **Sequential latency, API vs in-process.** The same searches, one at a time: over HTTP
   (keep-alive connection, JSON body, key check, validation, serialisation) and called
   in-process (``pixdex.app.service.search.run_search``, what the route calls; and the
   engine's ``pixdex.app.search.search`` below it). The ratio is the API's overhead.
2. **Throughput.** ``--clients`` threads, each with its own kept-alive connection, for
   ``--seconds``: a mix of ``POST /v1/search`` by ``like_image`` (random indexed image),
   by auto-tags, by query image bytes (base64 JPEG, embedded per request), and
   ``GET /v1/images/{id}``. Requests/s, p50 / p95 / p99 latency, errors, per kind.

The load generator runs on the same machine as the server (they share its cores).

    .venv/bin/python bench/bench_api.py --clients 16 --seconds 30 --images 300

Results: a markdown table on stdout and ``bench/results/api.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from pixdex.app.search import search
from pixdex.app.service.keys import create_key
from pixdex.app.service.search import run_search
from pixdex.app.service.search_schemas import SearchRequest
from pixdex.config import Settings
from pixdex.models import SearchQuery
from pixdex.storage.connection import close_pools
from pixdex.storage.embedded import stop_server

PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "clock", "rocket", "moon",
          "hubble_deep_field", "immunohistochemistry", "page", "retina", "text", "brick",
          "grass", "gravel", "colorwheel", "horse", "cat", "motorcycle_left")
RESULTS = Path(__file__).parent / "results" / "api.json"


def _photos() -> list[Image.Image]:
    import skimage.data

    out = []
    for name in PHOTOS:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            continue
        array = np.asarray(loader())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        out.append(Image.fromarray(array).convert("RGB"))
    return out


def _variants(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    base = _photos()
    out = []
    for n in range(count):
        picture = base[n % len(base)]
        w, h = picture.size
        left, top = rng.randint(0, w // 5), rng.randint(0, h // 5)
        picture = picture.crop((left, top, w - rng.randint(0, w // 5), h - rng.randint(0, h // 5)))
        if rng.random() < 0.5:
            picture = ImageOps.mirror(picture)
        picture = picture.rotate(rng.uniform(-8, 8))
        picture = ImageEnhance.Brightness(picture).enhance(rng.uniform(0.6, 1.3))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=rng.randint(60, 90))
        out.append(buffer.getvalue())
    return out


class Connection:
    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            raise


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
            "mean": round(statistics.fmean(ordered) * 1000, 2)}


def _start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXDEX_")}
    env["PIXDEX_HOME"] = str(home)
    pixdex = shutil.which("pixdex", path=str(Path(sys.executable).parent)) or "pixdex"
    process = subprocess.Popen([pixdex, "serve", "--port", str(port), "--quiet"], env=env,
                               stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/v1/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("pixdex serve did not start")


def _setup(conn: Connection, images: list[bytes]) -> tuple[str, list[str]]:
    status, body = conn.call("POST", "/v1/datasets", {"name": "bench"})
    assert status == 201, body
    dataset = json.loads(body)["id"]
    ids: list[str] = []
    started = time.perf_counter()
    for start in range(0, len(images), 64):
        chunk = images[start : start + 64]
        payload = {"images": [{"base64": base64.b64encode(b).decode(), "name": f"{start + i}.jpg"}
                              for i, b in enumerate(chunk)]}
        status, body = conn.call("POST", f"/v1/datasets/{dataset}/images", payload)
        assert status == 202, body
        ids += [i["id"] for i in json.loads(body)["images"]]
    # 202: the server indexes in the background; the dataset is READY once all are done.
    while True:
        status, body = conn.call("GET", f"/v1/datasets/{dataset}", None)
        if json.loads(body)["status"] == "READY":
            break
        time.sleep(0.2)
    print(f"added {len(ids)} images through the API in {time.perf_counter() - started:.1f} s")
    return dataset, ids


def _bodies(ids: list[str], queries: list[str], rng: random.Random) -> dict[str, Any]:
    return {
        "like_image": lambda: ("POST", "/v1/search", {"in_dataset": "bench", "limit": 20,
                                                      "like_image": rng.choice(ids)}),
        "tags": lambda: ("POST", "/v1/search", {"in_dataset": "bench", "limit": 20,
                                                "attributes": ["dark", "blurry", "bright"]}),
        "query_image": lambda: ("POST", "/v1/search", {"in_dataset": "bench", "limit": 20,
                                                       "image": rng.choice(queries)}),
        "get_image": lambda: ("GET", f"/v1/images/{rng.choice(ids)}", None),
    }


def _sequential(
    settings: Settings, conn: Connection, ids: list[str], rounds: int
) -> dict[str, Any]:
    """Same like_image searches: over HTTP, via the service, via the engine."""
    from uuid import UUID

    picks = [ids[i % len(ids)] for i in range(rounds)]
    http_times, service_times, engine_times = [], [], []
    for image_id in picks:  # warm-up and measure, interleaved so drift hits all three alike
        body = {"in_dataset": "bench", "like_image": image_id, "limit": 20}
        started = time.perf_counter()
        status, _ = conn.call("POST", "/v1/search", body)
        http_times.append(time.perf_counter() - started)
        assert status == 200
        started = time.perf_counter()
        run_search(settings, "default", SearchRequest.model_validate(body))
        service_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        search(SearchQuery(dataset="bench", like_image_id=UUID(image_id), limit=20), settings)
        engine_times.append(time.perf_counter() - started)
    out: dict[str, Any] = {
        "http": _percentiles(http_times), "service_in_process": _percentiles(service_times),
        "engine_in_process": _percentiles(engine_times)}
    out["overhead_ratio_p50_vs_service"] = round(out["http"]["p50"] / out[
        "service_in_process"]["p50"], 2)
    out["overhead_ratio_p50_vs_engine"] = round(out["http"]["p50"] / out[
        "engine_in_process"]["p50"], 2)
    out["overhead_ms_p50_vs_service"] = round(out["http"]["p50"] - out["service_in_process"][
        "p50"], 2)
    return out


def _load(port: int, key: str, ids: list[str], queries: list[str], clients: int,
          seconds: float) -> dict[str, Any]:
    records: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(n: int) -> None:
        rng = random.Random(n)
        conn = Connection(port, key)
        kinds = _bodies(ids, queries, rng)
        names = list(kinds)
        mine: list[tuple[str, float, int]] = []
        while time.monotonic() < stop_at:
            kind = rng.choices(names, weights=(4, 2, 1, 3))[0]
            method, path, body = kinds[kind]()
            started = time.perf_counter()
            try:
                status, _ = conn.call(method, path, body)
            except (http.client.HTTPException, OSError):
                status = 599
            mine.append((kind, time.perf_counter() - started, status))
        with lock:
            records.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    summary: dict[str, Any] = {"clients": clients, "seconds": round(elapsed, 1)}
    for kind in ["all", *sorted({r[0] for r in records})]:
        chosen = [r for r in records if kind in ("all", r[0])]
        summary[kind] = {
            "requests": len(chosen), "rps": round(len(chosen) / elapsed, 1),
            "errors": sum(1 for r in chosen if r[2] >= 400),
            **_percentiles([r[1] for r in chosen if r[2] < 400]),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=200, help="sequential comparisons")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary home")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pixdex-bench-api-"))
    settings = Settings(home=home)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = _start_server(home, port)
    try:
        key = create_key(settings, "default", name="bench").key
        conn = Connection(port, key)
        images = _variants(args.images, args.seed)
        _, ids = _setup(conn, images)
        queries = [base64.b64encode(b).decode() for b in _variants(20, args.seed + 1)]
        sequential = _sequential(settings, conn, ids, args.rounds)
        load = _load(port, key, ids, queries, args.clients, args.seconds)
        result: dict[str, Any] = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "images": len(ids), "sequential_like_image": sequential, "load": load,
        }
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        close_pools()
        stop_server(settings.pgdata_dir)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    seq = result["sequential_like_image"]
    print("\n| path (like_image, limit 20) | p50 ms | p95 ms |\n|---|---:|---:|")
    for name in ("http", "service_in_process", "engine_in_process"):
        print(f"| {name} | {seq[name]['p50']} | {seq[name]['p95']} |")
    print(f"\nHTTP / in-process service p50: {seq['overhead_ratio_p50_vs_service']}x "
          f"(+{seq['overhead_ms_p50_vs_service']} ms)")
    print(f"\n{load['clients']} clients, {load['seconds']} s\n")
    print("| kind | requests | req/s | errors | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, row in load.items():
        if isinstance(row, dict):
            print(f"| {kind} | {row['requests']} | {row['rps']} | {row['errors']} | "
                  f"{row['p50']} | {row['p95']} | {row['p99']} |")


if __name__ == "__main__":
    main()
