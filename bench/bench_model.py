"""Model-alone throughput of the default EfficientNet-Lite0 (onnxruntime, CPU by default).

Measures images/s and ms/image at batch sizes 1, 8 and 32 over ~200 copies of the
scikit-image photos, once with preprocessing excluded (pre-built NCHW tensors fed to the
session) and once included (PIL images in, embeddings out). Decoding is excluded: the
photos are already in memory. Prints a markdown table.

    .venv/bin/python bench/bench_model.py [--images 200] [--providers cpu|auto|cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import skimage.data
from PIL import Image

from pixdex.config import Settings
from pixdex.inference import EfficientNetLite0, preprocess_images


def _photos(count: int) -> list[Image.Image]:
    sources = [
        skimage.data.chelsea(),
        skimage.data.coffee(),
        skimage.data.astronaut(),
        skimage.data.rocket(),
        skimage.data.stereo_motorcycle()[0],
    ]
    base = [Image.fromarray(a) for a in sources]
    # Copies, so PIL cannot share any per-image cached state between iterations.
    return [base[i % len(base)].copy() for i in range(count)]


def _time(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: first run allocates arenas and picks kernels
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--providers", choices=["cpu", "auto", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), providers=args.providers)
        images = _photos(args.images)
        probe = EfficientNetLite0(settings)
        probe.embed_images(images[:1])
        rows = []
        for batch in (1, 8, 32):
            model = EfficientNetLite0(settings, batch_size=batch)
            chunks = [images[i : i + batch] for i in range(0, len(images), batch)]
            tensors = [preprocess_images(chunk) for chunk in chunks]

            def model_only(m: EfficientNetLite0 = model, t: list[np.ndarray] = tensors) -> None:
                for pixels in t:
                    m.embed_pixels(pixels)

            def with_preprocess(m: EfficientNetLite0 = model) -> None:
                m.embed_images(images)

            for label, fn in (("model only", model_only), ("+ preprocess", with_preprocess)):
                seconds = _time(fn, args.repeats)
                rows.append((batch, label, len(images) / seconds, 1000 * seconds / len(images)))

    print(
        f"EfficientNet-Lite0, {args.images} images, providers={probe.providers}, "
        f"onnxruntime {ort.__version__}, {platform.processor() or platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} CPUs available\n"
    )
    print("| batch | pipeline | images/s | ms/image |")
    print("|---:|---|---:|---:|")
    for batch, label, ips, ms in rows:
        print(f"| {batch} | {label} | {ips:.1f} | {ms:.2f} |")


if __name__ == "__main__":
    main()
