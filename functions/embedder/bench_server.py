"""Throughput of the inference server: images/s at several request batch sizes.

Sends JPEG photos (scikit-image samples at their own sizes, base64 in the JSON body) to
``POST /invocations`` and times whole round trips: JSON parsing, base64 and JPEG decoding,
attributes, preprocessing, the model, tags and the JSON answer. With ``--url`` it measures
a running server (e.g. this container on a GPU); without, it starts one in-process on
loopback with the local providers (``PIXDEX_PROVIDERS``) and also times the engine alone
(same work, no HTTP) to show what the transport costs.

    python functions/embedder/bench_server.py [--url http://host:8080] [--images 256]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
from PIL import Image

from pixdex.config import Settings
from pixdex.embedder.protocol import ImageInput, InvocationRequest
from pixdex.serving.server import running_server


def _photos(count: int) -> list[str]:
    import skimage.data

    sources = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(),
               skimage.data.rocket(), skimage.data.stereo_motorcycle()[0]]
    encoded = []
    for array in sources:
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(array)).convert("RGB").save(buffer, "JPEG", quality=90)
        encoded.append(base64.b64encode(buffer.getvalue()).decode())
    return [encoded[i % len(encoded)] for i in range(count)]


def _post(url: str, images: list[str]) -> None:
    body = json.dumps({"images": [{"base64": b} for b in images]}).encode()
    request = urllib.request.Request(  # noqa: S310 (benchmark target given by the user)
        url + "/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as answer:  # noqa: S310
        errors = json.loads(answer.read())["errors"]
    assert not any(errors), errors


def _rate(images: list[str], batch: int, clients: int, send: Callable[[list[str]], None]) -> float:
    chunks = [images[i : i + batch] for i in range(0, len(images), batch)]
    send(chunks[0])  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, chunks))
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a running server; default: start one in-process")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batches", default="1,8,32,64")
    args = parser.parse_args()
    images = _photos(args.images)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
          f"onnxruntime {ort.__version__} {ort.get_available_providers()}")
    print("| request batch | 1 client (img/s) | 2 clients (img/s) | engine alone (img/s) |")
    print("|---:|---:|---:|---:|")
    if args.url:
        for batch in batches:
            one = _rate(images, batch, 1, lambda chunk: _post(args.url, chunk))
            two = _rate(images, batch, 2, lambda chunk: _post(args.url, chunk))
            print(f"| {batch} | {one:.1f} | {two:.1f} | - |")
        return
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=home, batch_size=max(batches))
        with running_server(settings, max_images=max(batches)) as server:
            engine = server.engine

            def direct(chunk: list[str]) -> None:
                engine.invoke(InvocationRequest(images=[ImageInput(base64=b) for b in chunk]))

            for batch in batches:
                one = _rate(images, batch, 1, lambda chunk: _post(server.url, chunk))
                two = _rate(images, batch, 2, lambda chunk: _post(server.url, chunk))
                alone = _rate(images, batch, 1, direct)
                print(f"| {batch} | {one:.1f} | {two:.1f} | {alone:.1f} |")


if __name__ == "__main__":
    main()
