"""Dataset curation: quality on real photos, and timing on generated embeddings.

Quality (``--quality``): scikit-image's photos (tests/curation_photos.py) are indexed
with the offline model through ``pixdex.app.ingest`` as originals in ``train``, with
planted near-duplicates (each photo's six light augmentations: crop 10 %, resize 50 %,
JPEG q70, mirror, colour shift, blur r=1) spread over train / valid / test, and the six
strong ones (crop 30 %, resize 25 %, JPEG q20, mirror + crop, strong colour, blur r=3)
indexed in a second dataset. The photos are mutually unrelated. Measured:

* level 1: pair precision and recall of the clusters against the truth (two images are a
  true pair when they come from the same photo);
* level 0: pairs of different photos reported (must be 0);
* leakage at level 1: planted cross-split pairs (original in train, its copy elsewhere)
  found among the reported leaking pairs;
* recall of the strong copies per level.

Timing (``--rows N``): N generated 1280-d unit vectors (bench_search's clustered corpus)
COPYed into a dataset, the model's HNSW index built, then the full recompute
(``pixdex.app.curation.recompute``: numpy when N <= ``exact_search_max_rows``, HNSW
otherwise, ``--hnsw`` to force it), and the incremental update: ``--added`` images
written one at a time through ``storage.images.write_images`` and given their neighbours
by ``curation.refresh_images`` (what ingest runs after each batch), timed per image.

    PYTHONPATH=layers:. nice -n 19 .venv/bin/python bench/bench_curation.py --quality
    PYTHONPATH=layers:. nice -n 19 .venv/bin/python bench/bench_curation.py --rows 100000

At scale (``--scale-home``): the kept database of ``bench/bench_scale.py`` (1M 768-d
vectors over 238 Zipf-sized datasets, the largest 500k, each over 2,000 rows with its own
HNSW index): every dataset's full recompute, timed one after the other (the whole
deployment's graph), then ``--added`` images written one at a time into the largest
dataset and refreshed as ingest does; they are deleted again at the end so the search
benchmark's ground truth still holds.

    PYTHONPATH=layers:. nice -n 19 .venv/bin/python bench/bench_curation.py \
        --scale-home /tmp/pixdex-bench-scale-1000000-768 --scale-model scale-768

Results: bench/results/curation-quality.json, bench/results/curation-<rows>.json,
bench/results/curation-scale-<rows>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from search_data import SPEC, Corpus, build_index, load_rows, log, row_id

from pixdex.app import curation
from pixdex.app.ingest import IngestItem, ingest
from pixdex.blobs import BlobRef
from pixdex.config import Settings
from pixdex.models import ImageStatus, UserMetadata
from pixdex.storage import catalog, images
from pixdex.storage import curation as curation_sql
from pixdex.storage.connection import close_pools, connect, database_url
from pixdex.storage.embedded import stop_server
from tests.curation_photos import AUGMENTATIONS, photos

RESULTS = Path(__file__).resolve().parent / "results"
SPLITS = ("train", "valid", "test")


def _index(settings: Settings, root: Path, dataset: str,
           pictures: dict[str, tuple[Any, str]]) -> dict[UUID, str]:
    """Index ``name -> (image, split)``; return id -> name (``photo~augmentation``)."""
    items = []
    for name, (picture, split) in pictures.items():
        path = root / f"{dataset}-{name}.png"
        picture.save(path)
        items.append(IngestItem(BlobRef.parse(path.as_uri()), meta=UserMetadata(split=split)))
    report = ingest(items, dataset, settings=settings)
    return {e.id: Path(e.path).stem.split("-", 1)[1] for e in report.images if e.id is not None}


def _truth(names: dict[UUID, str]) -> set[frozenset[UUID]]:
    """Two images are a true pair when they come from the same photo."""
    return {frozenset(p) for p in itertools.combinations(names, 2)
            if names[p[0]].split("~")[0] == names[p[1]].split("~")[0]}


def _reported(settings: Settings, dataset: str, level: int) -> tuple[float, set[frozenset[UUID]]]:
    page = curation.duplicates(dataset, level=level, limit=100_000, settings=settings)
    clusters = [[m.id for m in c.members] for c in page.clusters]
    return page.threshold, {frozenset(p) for c in clusters for p in itertools.combinations(c, 2)}


def _copies(strength: str, spread: bool) -> dict[str, tuple[Any, str]]:
    originals = photos()
    rng = np.random.default_rng(7)
    pictures: dict[str, tuple[Any, str]] = {n: (p, "train") for n, p in originals.items()}
    for name, picture in originals.items():
        for aug, apply in AUGMENTATIONS[strength].items():
            split = str(rng.choice(SPLITS)) if spread else "train"
            pictures[f"{name}~{aug}"] = (apply(picture), split)
    return pictures


def quality(settings: Settings, root: Path) -> dict[str, Any]:
    light = _copies("light", spread=True)
    names = _index(settings, root, "light", light)
    truth = _truth(names)
    result: dict[str, Any] = {"images": len(names), "true_pairs": len(truth)}
    for level in range(5):
        cut, found = _reported(settings, "light", level)
        hits = len(found & truth)
        result[f"light_level{level}"] = {
            "threshold": cut, "reported_pairs": len(found),
            "precision": round(hits / len(found), 4) if found else 1.0,
            "recall": round(hits / len(truth), 4), "unrelated_pairs": len(found - truth),
        }
    leaks = curation.leakage("light", level=1, settings=settings)
    reported = {frozenset((p.a.id, p.b.id)) for p in leaks.pairs}
    split = {i: light[n][1] for i, n in names.items()}
    planted = {pair for pair in truth if len({split[i] for i in pair}) == 2
               and any("~" not in names[i] for i in pair)}
    result["leakage_level1"] = {
        "planted_original_copy_pairs": len(planted), "found": len(planted & reported),
        "reported_pairs": len(reported), "reported_unrelated": len(reported - truth),
        "counts": leaks.counts,
    }
    names = _index(settings, root, "strong", _copies("strong", spread=False))
    truth = _truth(names)
    for level in range(5):
        _, found = _reported(settings, "strong", level)
        result[f"strong_level{level}"] = {
            "recall": round(len(found & truth) / len(truth), 4),
            "unrelated_pairs": len(found - truth),
        }
    return result


def timing(settings: Settings, rows: int, added: int, hnsw: bool,
           recompute: bool = True) -> dict[str, Any]:
    result: dict[str, Any] = {"rows": rows, "k": settings.curation_neighbours}
    with connect(settings) as conn:
        ds = catalog.ensure_dataset(conn, "default", f"bench-{rows}")
    direct = psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row)
    register_vector(direct)
    corpus = Corpus(seed=1, clusters=max(10, rows // 1000), dim=SPEC.dim)
    result["load_seconds"] = round(load_rows(direct, corpus, ds.id, rows), 1)
    direct.close()
    result["build"] = build_index(settings, ds.id, 60.0, "2GB")
    log(f"loaded {rows} in {result['load_seconds']} s, index {result['build']['seconds']} s")
    if hnsw:
        settings = settings.model_copy(update={"exact_search_max_rows": 0})
    with connect(settings) as conn:
        sample = [row_id(n) for n in range(0, rows, max(1, rows // 8))][:8]
        plan = curation_sql.knn_plan(conn, SPEC.name, SPEC.dim, ds.id, sample, 8, exact=False)
    result["knn_plan"] = plan.splitlines()
    result["knn_uses_hnsw"] = catalog.hnsw_index_name(SPEC.name) in plan
    if recompute:
        done = curation.recompute(ds.id, settings=settings)
        result["recompute_seconds"] = done.seconds
        exact = rows <= min(settings.exact_search_max_rows, curation.EXACT_GRAPH_MAX_ROWS)
        result["recompute_path"] = "numpy" if exact else "hnsw"
        result["recompute_ms_per_image"] = round(1000 * done.seconds / rows, 3)
        log(f"recompute {rows}: {done.seconds} s ({result['recompute_path']})")
    rng = np.random.default_rng(99)
    queries = corpus.queries(added)
    refresh_ms: list[float] = []
    total_ms: list[float] = []
    for n in range(added):
        vector = queries[n] + rng.standard_normal(SPEC.dim).astype(np.float32) * 0.01
        write = images.ImageWrite(dataset_id=ds.id, storage_key=f"bench-added://{n}",
                                  name=f"added-{n}.jpg", folder="/", sha256=None, byte_size=None,
                                  status=ImageStatus.INDEXED, embedding=vector.astype(np.float32))
        start = time.perf_counter()
        with connect(settings) as conn:
            images.write_images(conn, SPEC.name, [write])
        written = time.perf_counter()
        curation.refresh_images(settings, ds.id, SPEC.name)
        end = time.perf_counter()
        refresh_ms.append(1000 * (end - written))
        total_ms.append(1000 * (end - start))
    result["incremental_refresh_ms"] = _stats(refresh_ms)
    result["incremental_write_and_refresh_ms"] = _stats(total_ms)
    log(f"incremental: {result['incremental_refresh_ms']}")
    return result


def at_scale(settings: Settings, added: int) -> dict[str, Any]:
    """Every dataset's recompute on a bench_scale database, then the per-image update in
    its largest dataset."""
    with connect(settings) as conn:
        model = catalog.model_info(conn, settings.model)
        sizes = conn.execute(
            "SELECT dataset_id, count(*) AS n FROM image_embeddings WHERE model = %s"
            " GROUP BY dataset_id ORDER BY n DESC", (model.name,)).fetchall()
    per_dataset: list[dict[str, Any]] = []
    started = time.perf_counter()
    for row in sizes:
        done = curation.recompute(UUID(str(row["dataset_id"])), settings=settings)
        per_dataset.append({"dataset": done.dataset, "images": done.images,
                            "seconds": done.seconds})
        if done.images >= 10_000:
            log(f"recompute {done.dataset}: {done.images} images in {done.seconds} s")
    total = time.perf_counter() - started
    images_done = sum(d["images"] for d in per_dataset)
    result: dict[str, Any] = {
        "datasets": len(per_dataset), "images": images_done,
        "recompute_seconds": round(total, 1),
        "recompute_ms_per_image": round(1000 * total / max(1, images_done), 3),
        "largest": per_dataset[0], "per_dataset": per_dataset,
        "workers": settings.curation_workers, "k": settings.curation_neighbours,
    }
    log(f"recompute of {images_done} images in {len(per_dataset)} datasets: {total:.0f} s")
    largest = UUID(str(sizes[0]["dataset_id"]))
    rng = np.random.default_rng(99)
    with connect(settings) as conn:  # near-copies of existing rows: each finds neighbours
        rows = conn.execute(
            "SELECT embedding FROM image_embeddings WHERE dataset_id = %s AND model = %s"
            " ORDER BY image_id LIMIT %s", (largest, model.name, added)).fetchall()
        base = [np.asarray(r["embedding"].to_numpy(), dtype=np.float32)  # type: ignore[attr-defined]
                for r in rows]  # a pgvector HalfVector (psycopg rows are typed as objects)
    refresh_ms: list[float] = []
    total_ms: list[float] = []
    try:
        for n, vector in enumerate(base):
            vector = vector + rng.standard_normal(model.dim).astype(np.float32) * 0.01
            write = images.ImageWrite(
                dataset_id=largest, storage_key=f"bench-added://{n}", name=f"added-{n}.jpg",
                folder="/", sha256=None, byte_size=None, status=ImageStatus.INDEXED,
                embedding=vector.astype(np.float32))
            start = time.perf_counter()
            with connect(settings) as conn:
                images.write_images(conn, model.name, [write])
            written = time.perf_counter()
            curation.refresh_images(settings, largest, model.name)
            end = time.perf_counter()
            refresh_ms.append(1000 * (end - written))
            total_ms.append(1000 * (end - start))
    finally:
        with connect(settings) as conn:
            conn.execute("DELETE FROM images WHERE dataset_id = %s"
                         " AND storage_key LIKE 'bench-added://%%'", (largest,))
    result["incremental_dataset_images"] = per_dataset[0]["images"]
    result["incremental_refresh_ms"] = _stats(refresh_ms)
    result["incremental_write_and_refresh_ms"] = _stats(total_ms)
    log(f"incremental in the largest dataset: {result['incremental_refresh_ms']}")
    return result


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"mean": round(statistics.fmean(ms), 2), "p50": round(ordered[len(ms) // 2], 2),
            "p95": round(ordered[int(len(ms) * 0.95)], 2), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--added", type=int, default=200)
    parser.add_argument("--hnsw", action="store_true", help="HNSW recompute at any size")
    parser.add_argument("--incremental-only", action="store_true",
                        help="skip the full recompute: only the per-image update")
    parser.add_argument("--scale-home", type=Path, default=None,
                        help="a kept bench_scale.py database: curate all of it")
    parser.add_argument("--scale-model", default="scale-768")
    args = parser.parse_args()
    if args.scale_home is not None:
        scale = Settings(home=args.scale_home.resolve(), model=args.scale_model)
        try:
            result = {"machine": {"cpus": 2, "platform": platform.platform()},
                      **at_scale(scale, args.added)}
        finally:
            close_pools()
            stop_server(scale.pgdata_dir)
        out = RESULTS / f"curation-scale-{result['images']}.json"
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(json.dumps({k: v for k, v in result.items() if k != "per_dataset"}, indent=2))
        return
    home = Path(tempfile.mkdtemp(prefix="pixdex-bench-curation-"))
    settings = Settings(home=home, batch_size=16, decode_workers=2, model=SPEC.name
                        if args.rows else "efficientnet-lite0")
    machine = {"cpus": 2, "platform": platform.platform(), "python": platform.python_version()}
    try:
        if args.quality:
            result = {"machine": machine, **quality(settings, home)}
            (RESULTS / "curation-quality.json").write_text(json.dumps(result, indent=2) + "\n")
            print(json.dumps(result, indent=2))
        if args.rows:
            result = {"machine": machine, **timing(settings, args.rows, args.added, args.hnsw,
                                                        not args.incremental_only)}
            suffix = "-incremental" if args.incremental_only else "-hnsw" if args.hnsw else ""
            name = f"curation-{args.rows}{suffix}.json"
            (RESULTS / name).write_text(json.dumps(result, indent=2, default=str) + "\n")
            print(json.dumps({k: v for k, v in result.items() if k != "build"}, indent=2))
    finally:
        close_pools()
        stop_server(home / "pgdata")


if __name__ == "__main__":
    main()
