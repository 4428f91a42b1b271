"""Ingest end to end vs the model alone, on the same photo-derived JPEG/PNG files.

Files: ``--images`` (default 2000) variations of scikit-image's bundled photos (random
crop, flip, rotation, colour jitter, resized to typical sizes 640x480 .. 1024x768; 80%
JPEG q85, 20% PNG), seeded, written once to ``HOME/images`` (reused by a rerun with
``--keep``).

Measured:

(a) ``pixdex.app.ingest.ingest(local_items([folder]).items, ...)`` on a fresh dataset;
(b) the same call again (every file skipped by content hash: the idempotent path);
(c) the model alone: ``embed_pixels`` over the same images, preprocessed in memory, in
    batches of ``settings.batch_size``;
(d) decode + preprocess alone (bytes already in memory), 1 thread and
    ``settings.decode_workers`` threads; and the full per-file load work of the ingest
    worker (read + sha256 + decode + pixel attributes + preprocess);
(e) with ``--sweep``: (a) again for PIXDEX_DECODE_WORKERS=1,2,3 (batch 32) and
    PIXDEX_BATCH_SIZE=16,64 (2 workers), each on its own fresh dataset.

    .venv/bin/python bench/bench_ingest.py [--images 2000] [--sweep]

Results: a markdown table on stdout and ``bench/results/ingest.json``.

``--mix``: a realistic mix instead (12 MP phone JPEGs with EXIF orientation, 2560x1440 PNG
screenshots, small web images; default 240 files), end to end against decoding alone and
the model alone, before (a baseline commit's code) and after; see ``bench/ingest_mix.py``.

    .venv/bin/python bench/bench_ingest.py --mix [--images 240]

Results: ``bench/results/ingest-mix.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ingest_mix
import numpy as np
import onnxruntime as ort
import skimage.data
from numpy.typing import NDArray
from PIL import Image, ImageEnhance

from pixdex.app.ingest import ingest
from pixdex.app.sources import local_items
from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.imaging.decode import decode_image
from pixdex.inference import preprocess_images
from pixdex.models import ImageMetadata
from pixdex.pipeline import decode_floor, prepare
from pixdex.storage.connection import close_pools, connect
from pixdex.storage.embedded import stop_server

PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "clock", "colorwheel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "text", "brick",
    "grass", "gravel",
)
SIZES = ((640, 480), (800, 600), (1024, 768), (768, 1024), (720, 540), (960, 720), (480, 640))
RESULTS = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _sources() -> list[Image.Image]:
    out = []
    for name in PHOTOS:
        array = getattr(skimage.data, name)()
        if array.dtype != np.uint8:
            array = (255 * (array - array.min()) / max(1e-9, float(np.ptp(array)))).astype(
                np.uint8
            )
        out.append(Image.fromarray(array).convert("RGB"))
    return out


def _variant(source: Image.Image, rng: np.random.Generator) -> Image.Image:
    width, height = source.size
    scale = rng.uniform(0.5, 1.0)
    cw, ch = max(32, int(width * scale)), max(32, int(height * scale))
    left = int(rng.integers(0, width - cw + 1))
    top = int(rng.integers(0, height - ch + 1))
    image = source.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.3:
        image = image.rotate(float(rng.uniform(-20, 20)), resample=Image.Resampling.BILINEAR)
    image = ImageEnhance.Color(image).enhance(float(rng.uniform(0.6, 1.4)))
    image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.8, 1.2)))
    size = SIZES[int(rng.integers(0, len(SIZES)))]
    return image.resize(size, Image.Resampling.BILINEAR)


def make_images(folder: Path, count: int, seed: int) -> list[Path]:
    existing = sorted(p for p in folder.glob("img-*") if p.is_file()) if folder.exists() else []
    if len(existing) == count:
        return existing
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = _sources()
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        image = _variant(sources[i % len(sources)], rng)
        if rng.random() < 0.2:
            path = folder / f"img-{i:05d}.png"
            image.save(path, format="PNG")
        else:
            path = folder / f"img-{i:05d}.jpg"
            image.save(path, format="JPEG", quality=85)
        paths.append(path)
    return paths


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _run_ingest(folder: Path, dataset: str, settings: Settings) -> dict[str, Any]:
    items = local_items([folder], folder=None, meta=ImageMetadata()).items
    seconds, report = _timed(lambda: ingest(items, dataset, settings=settings))
    return {
        "images": len(items), "seconds": round(seconds, 2),
        "images_per_s": round(len(items) / seconds, 1),
        "indexed": report.indexed, "skipped": report.skipped, "failed": report.failed,
        "decode_workers": settings.decode_workers, "batch_size": settings.batch_size,
    }


def _start_database(settings: Settings) -> None:
    with connect(settings) as conn:
        conn.execute("SELECT 1")


def _decode_preprocess(data: bytes, settings: Settings) -> NDArray[np.float32]:
    """Decode at the size the model needs (the pipeline's floor) and preprocess."""
    decoded = decode_image(
        data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes,
        floor=decode_floor([get_model(settings=settings)]),
    )
    return preprocess_images([decoded.image], 224)


def _full_load(path: Path, settings: Settings) -> NDArray[np.float32]:
    """What an ingest worker does per file (see pixdex.app.ingest._load_one)."""
    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    return prepare(data, get_model(settings=settings), settings).pixels


def _throughput(fn: Callable[[Any], Any], inputs: Sequence[Any], workers: int) -> float:
    """images/s of ``fn`` over ``inputs`` with ``workers`` threads."""
    start = time.perf_counter()
    if workers == 1:
        for item in inputs:
            fn(item)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(fn, inputs):
                pass
    return len(inputs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=None,
                        help="files to generate (default 2000; 240 with --mix)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", type=Path, default=None,
                        help="default /tmp/pixdex-bench-ingest (-mix with --mix)")
    parser.add_argument("--mix", action="store_true",
                        help="the realistic mix, before and after (bench/ingest_mix.py)")
    parser.add_argument("--keep", action="store_true", help="keep database and image files")
    parser.add_argument("--sweep", action="store_true",
                        help="also ingest with decode_workers 1,2,3 and batch_size 16,64")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--decode-workers", type=int, default=2)
    parser.add_argument("--only-ingest", action="store_true",
                        help="only (a) and (b): end-to-end ingest at the given settings")
    parser.add_argument("--out", type=Path, default=None)
    ingest_mix.add_arguments(parser)
    args = parser.parse_args()
    if args.mix:
        args.images = 240 if args.images is None else args.images
        ingest_mix.main_mix(args)
        return
    args.images = 2000 if args.images is None else args.images
    args.home = args.home or Path("/tmp/pixdex-bench-ingest")
    args.out = args.out or RESULTS / "ingest.json"

    home = args.home.resolve()
    created = not home.exists()
    folder = home / "images"
    # Explicit values (flags), so PIXDEX_* in the environment cannot change the baseline.
    settings = Settings(home=home, decode_workers=args.decode_workers,
                        batch_size=args.batch_size, providers="cpu")
    result: dict[str, Any] = {
        "images": args.images,
        "machine": {"cpus": len(os.sched_getaffinity(0)), "platform": platform.platform(),
                    "python": platform.python_version(), "onnxruntime": ort.__version__},
        "settings": {"decode_workers": settings.decode_workers,
                     "batch_size": settings.batch_size, "model": settings.model},
    }
    try:
        log(f"generating {args.images} images in {folder}")
        seconds, paths = _timed(lambda: make_images(folder, args.images, args.seed))
        total_bytes = sum(p.stat().st_size for p in paths)
        result["files"] = {
            "count": len(paths), "generate_seconds": round(seconds, 1),
            "mean_kib": round(total_bytes / len(paths) / 1024, 1),
            "png": sum(p.suffix == ".png" for p in paths),
        }
        log("warming the model (builds the ONNX graph once per home)")
        model = get_model(settings=settings)
        model.embed_pixels(np.zeros((1, 3, 224, 224), dtype=np.float32))

        log("starting the embedded database (kept out of the ingest timings)")
        seconds, _ = _timed(lambda: _start_database(settings))
        result["database_start_seconds"] = round(seconds, 2)
        log("(a) ingest, fresh dataset")
        result["ingest_fresh"] = _run_ingest(folder, "bench-ingest", settings)
        log(f"    {result['ingest_fresh']}")
        log("(b) ingest again, all skipped")
        result["ingest_again"] = _run_ingest(folder, "bench-ingest", settings)
        log(f"    {result['ingest_again']}")

        if args.only_ingest:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result["ingest_fresh"]))
            return
        log("(d) decode + preprocess alone")
        blobs = [p.read_bytes() for p in paths]
        one = _throughput(lambda b: _decode_preprocess(b, settings), blobs, 1)
        many = _throughput(lambda b: _decode_preprocess(b, settings), blobs,
                           settings.decode_workers)
        full_one = _throughput(lambda p: _full_load(p, settings), paths, 1)
        full_many = _throughput(lambda p: _full_load(p, settings), paths,
                                settings.decode_workers)
        result["decode_preprocess"] = {
            "images_per_s_1_thread": round(one, 1),
            f"images_per_s_{settings.decode_workers}_threads": round(many, 1),
            "full_load_images_per_s_1_thread": round(full_one, 1),
            f"full_load_images_per_s_{settings.decode_workers}_threads": round(full_many, 1),
        }
        log(f"    {result['decode_preprocess']}")

        log("(c) model alone on preprocessed tensors")
        with ThreadPoolExecutor(settings.decode_workers) as pool:
            tensors = list(pool.map(lambda b: _decode_preprocess(b, settings), blobs))
        del blobs
        batches = [
            np.concatenate(tensors[i : i + settings.batch_size])
            for i in range(0, len(tensors), settings.batch_size)
        ]
        del tensors
        start = time.perf_counter()
        for pixels in batches:
            model.embed_pixels(pixels)
        seconds = time.perf_counter() - start
        result["model_alone"] = {
            "images": args.images, "seconds": round(seconds, 2),
            "images_per_s": round(args.images / seconds, 1),
            "batch_size": settings.batch_size,
        }
        del batches
        log(f"    {result['model_alone']}")
        result["ratio_end_to_end_over_model_alone"] = round(
            result["ingest_fresh"]["images_per_s"] / result["model_alone"]["images_per_s"], 3
        )

        if args.sweep:
            result["sweep"] = []
            for workers, batch in ((1, 32), (3, 32), (2, 16), (2, 64)):
                variant = Settings(home=home, decode_workers=workers, batch_size=batch,
                                   providers="cpu")
                get_model(settings=variant).embed_pixels(
                    np.zeros((1, 3, 224, 224), dtype=np.float32)
                )
                log(f"(e) ingest, decode_workers={workers}, batch_size={batch}")
                run = _run_ingest(folder, f"bench-ingest-w{workers}-b{batch}", variant)
                log(f"    {run}")
                result["sweep"].append(run)

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(table(result))
        print(f"\nwritten: {args.out}")
    finally:
        close_pools()
        if not args.keep:
            stop_server(settings.pgdata_dir)
            if created:
                shutil.rmtree(home, ignore_errors=True)


def table(result: dict[str, Any]) -> str:
    workers = result["settings"]["decode_workers"]
    batch = result["settings"]["batch_size"]
    dp = result["decode_preprocess"]
    rows = [
        ("(a) ingest end to end, fresh dataset", result["ingest_fresh"]["images_per_s"]),
        ("(b) ingest again (all skipped)", result["ingest_again"]["images_per_s"]),
        (f"(c) model alone (embed_pixels, batch {batch})", result["model_alone"]["images_per_s"]),
        ("(d) decode + preprocess, 1 thread", dp["images_per_s_1_thread"]),
        (f"(d) decode + preprocess, {workers} threads", dp[f"images_per_s_{workers}_threads"]),
        ("(d) full worker load (read, sha256, decode, attributes, preprocess), 1 thread",
         dp["full_load_images_per_s_1_thread"]),
        (f"(d) full worker load, {workers} threads",
         dp[f"full_load_images_per_s_{workers}_threads"]),
    ]
    rows += [
        (f"(e) ingest, decode_workers={r['decode_workers']}, batch_size={r['batch_size']}",
         r["images_per_s"])
        for r in result.get("sweep", [])
    ]
    lines = [
        f"{result['images']} images, {result['machine']['cpus']} CPUs, "
        f"decode_workers={workers}, batch_size={batch}",
        "",
        "| measurement | images/s |",
        "|---|---:|",
        *(f"| {label} | {value} |" for label, value in rows),
        "",
        f"end-to-end / model-alone: {result['ratio_end_to_end_over_model_alone']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
