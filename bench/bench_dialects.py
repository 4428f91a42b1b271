"""The vendor dialects' cost over ``/v1/search``: the same searches through each adapter.

Setup: a real ``pixdex serve`` app (in-process server, real HTTP on loopback) in its own
``PIXDEX_HOME`` under /tmp, ``--images`` pictures (scikit-image photos with random crops,
flips and brightness changes) added through the API, one API key.

Measured, one request at a time (median and p95 of ``--repeat`` calls each):

* by indexed image: ``/v1/search {like_image}`` (default fields, and with ``created``,
  which the dialects answer with) vs Roboflow ``/{ws}/{project}/search`` and Clarifai
  ``/v2/searches`` (``output.input.id``);
* by query image bytes: ``/v1/search {image}`` vs Weaviate ``nearImage`` and Clarifai
  ``output.input.data.image.base64``;
* grouped: ``/v1/search {like_image, group, limit 250}`` vs Visual Layer ``explore``
  (``MEDIA`` anchor: ranks up to 1,000 images and groups them).

    nice -n 19 .venv/bin/python bench/bench_dialects.py --images 200 --repeat 30

Results: a markdown table on stdout and ``bench/results/dialects.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import io
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
from PIL import Image, ImageEnhance, ImageOps

from pixdex.app.service.keys import create_key
from pixdex.config import Settings
from pixdex.server import start
from pixdex.storage.connection import close_pools
from pixdex.storage.embedded import stop_server

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "coins", "hubble_deep_field")


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _pictures(count: int, rng: random.Random) -> list[bytes]:
    bases = [Image.fromarray(np.asarray(getattr(skimage.data, n)())).convert("RGB")
             for n in PHOTOS]
    out = []
    for _ in range(count):
        picture = rng.choice(bases)
        w, h = picture.size
        box = (rng.randint(0, w // 5), rng.randint(0, h // 5), w - rng.randint(0, w // 5),
               h - rng.randint(0, h // 5))
        picture = picture.crop(box)
        if rng.random() < 0.5:
            picture = ImageOps.mirror(picture)
        out.append(_jpeg(ImageEnhance.Brightness(picture).enhance(rng.uniform(0.6, 1.3))))
    return out


class Http:
    def __init__(self, url: str, key: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=300)
        self.key = key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        assert response.status < 300, (response.status, payload[:300])
        return json.loads(payload)


def _time(http: Http, repeat: int, method: str, path: str, body: Any) -> dict[str, float]:
    http.call(method, path, body)  # warm
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        http.call(method, path, body)
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return {"median_ms": round(statistics.median(took), 2),
            "p95_ms": round(took[int(0.95 * (len(took) - 1))], 2)}


def run(images: int, repeat: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="pixdex-bench-dialects-"))
    # Registered first, so it runs last: the database keeper's own exit hook writes there.
    atexit.register(shutil.rmtree, home, True)
    settings = Settings(home=home)
    server = start(settings)
    try:
        workspace = "bench"
        http = Http(server.url, create_key(settings, workspace).key)
        name = "Photos"
        dataset = http.call("POST", "/v1/datasets", {"name": name})["id"]
        ids: list[str] = []
        pictures = _pictures(images, random.Random(7))
        for at in range(0, len(pictures), 64):
            batch = [{"base64": base64.b64encode(p).decode()} for p in pictures[at:at + 64]]
            added = http.call("POST", f"/v1/datasets/{dataset}/images", {"images": batch})
            ids += [a["id"] for a in added["images"]]
        while (state := http.call("GET", f"/v1/datasets/{dataset}"))["status"] != "READY":
            time.sleep(0.5)
        if state["images"]["indexed"] < images:
            failed = http.call("GET", f"/v1/datasets/{dataset}/images?status=failed&limit=1")
            raise SystemExit(f"not all indexed: {state['images']}; {failed['images'][:1]}")
        like, query = ids[0], base64.b64encode(pictures[1]).decode()
        cases: dict[str, tuple[str, str, Any]] = {
            "v1 like_image": ("POST", "/v1/search", {"like_image": like, "in_dataset": name}),
            "v1 like_image, fields created": ("POST", "/v1/search", {
                "like_image": like, "in_dataset": name, "fields": ["created"]}),
            "roboflow like_image": ("POST", f"/{workspace}/{name}/search",
                                    {"like_image": like, "in_dataset": True}),
            "clarifai input id": ("POST", f"/v2/users/me/apps/{name}/searches", {"query": {
                "ands": [{"output": {"input": {"id": like}}}]}}),
            "v1 image bytes": ("POST", "/v1/search", {"image": query, "in_dataset": name,
                                                      "limit": 10}),
            "weaviate nearImage": ("POST", "/v1/graphql", {"query": (
                '{ Get { CLS(nearImage: {image: "IMG"}, limit: 10) { name _additional '
                "{ id distance } } } }").replace("CLS", name).replace("IMG", query)}),
            "clarifai image base64": ("POST", f"/v2/users/me/apps/{name}/searches", {
                "query": {"ands": [{"output": {"input": {"data": {"image": {"base64": query}}}}}]},
                "pagination": {"per_page": 10}}),
            "v1 group 2, limit 250": ("POST", "/v1/search", {"like_image": like, "group": 2,
                                                            "limit": 250, "in_dataset": name}),
            "visual layer explore": ("GET", f"/api/v1/explore/{dataset}?entity_type=IMAGES"
                                     f"&threshold=2&anchor_type=MEDIA&anchor_media_id={like}",
                                     None),
        }
        results = {label: _time(http, repeat, *case) for label, case in cases.items()}
    finally:
        server.stop()
        close_pools()
        stop_server(home / "pgdata")
    return {"images": images, "repeat": repeat, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("bench/results/dialects.json"))
    args = parser.parse_args()
    report = run(args.images, args.repeat)
    print(f"{report['images']} images, {report['repeat']} calls each\n")
    print("| request | median ms | p95 ms |\n|---|---:|---:|")
    for label, figures in report["results"].items():
        print(f"| {label} | {figures['median_ms']} | {figures['p95_ms']} |")
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
