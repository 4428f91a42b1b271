"""``bench_ingest.py --mix``: ingest of a realistic mix, before and after decoding at the
size the model needs (issue 13).

Files: :mod:`photo_mix` (``--images``, default 240): half 12 MP phone JPEGs (q90, EXIF
orientation, 70 % of them tiled photo detail), 15 % 2560x1440 PNG screenshots, the
rest 400-800 px web images (JPEG / WebP / PNG), seeded, written once to ``HOME/mix``.

"Before" is the baseline commit's code (``--baseline-ref``, default the last commit of
main before this change), extracted with ``git archive`` and run in a child process by
:mod:`probe_tree`; "after" is this checkout. The same timing code runs under both.

Measured, on the same files:

1. Decoding per file, on every third file (``--timing-files``), bytes in memory, best of
   2 per call; the two trees alternate ``--rounds`` times (default 4) and the best of
   all rounds is kept per file. ``decode_image`` alone, "fresh" (nothing else held: the
   freed buffers of a full-size decode go back to the kernel and the next decode faults
   them in again, ~24k page faults for a 12 MP JPEG) and "warm" (another decoded
   picture held: the heap keeps its pages); and ``prepare`` (decode + pixel attributes
   + model input). For EfficientNet-Lite0 and for SigLIP2-so400m-384 (a stand-in with
   its input size and preprocessing), per kind of file, in CPU time of the decoding
   thread (user + system: what a core spends; much steadier than wall time on a shared
   machine) and in wall time. The worker load (read + sha256 + prepare) in images/s and
   CPU ms per image with 1 thread and ``--decode-workers`` threads.
2. The two stages alone, after (a child process): the worker load with
   ``--decode-workers`` threads, and the model alone (``embed_pixels`` over the prepared
   tensors, batches of ``--batch-size``).
3. End to end: ``ingest()`` of the folder into a fresh dataset, before and after, each
   in a fresh child process on its tree, EfficientNet-Lite0 on the CPU; wall time, the
   process's CPU time and page faults per image. 2 and 3 alternate ``--e2e-rounds``
   times (default 2); the medians are reported, each round's figures kept in the JSON.
4. GPU sizing: decode workers one GPU needs = published GPU throughput / one worker's
   rate (1000 / its CPU ms per image, measured here).

Results: a markdown summary on stdout and ``bench/results/ingest-mix.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from photo_mix import make_mix
from probe_tree import summarise

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# main just before decoding at the size the model needs (issue 13, section 3).
BASELINE_REF = "cfafc12"
PROFILES = ("efficientnet-lite0", "siglip2-so400m-384")

# Published GPU inference throughput (images/s), used to size the decode workers of the
# GPU endpoint. timm's benchmark tables (huggingface/pytorch-image-models, results/
# benchmark-infer-amp-nchw-pt291-cu128-4090.csv: PyTorch 2.9.1, CUDA 12.8, AMP, NCHW,
# RTX 4090). timm's vit_so400m_patch16_siglip_384 is the SigLIP2-so400m-patch16-384
# architecture (its .v2_webli weights are SigLIP2's).
PUBLISHED_GPU = {
    "efficientnet-lite0": {
        "images_per_s": 10236.84, "timm_model": "efficientnet_lite0", "img_size": 224,
        "batch": 1024,
    },
    "siglip2-so400m-384": {
        "images_per_s": 207.19, "timm_model": "vit_so400m_patch16_siglip_384", "img_size": 384,
        "batch": 768,
    },
}
PUBLISHED_SOURCE = (
    "timm results/benchmark-infer-amp-nchw-pt291-cu128-4090.csv "
    "(huggingface/pytorch-image-models, RTX 4090, AMP, PyTorch 2.9.1 / CUDA 12.8)"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def baseline_tree(ref: str, where: Path) -> Path:
    """``layers/`` of ``ref``, extracted with git archive (the code as it was)."""
    target = where / f"baseline-{ref}"
    if not (target / "layers" / "pixdex").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "layers"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "layers"


def _child(tree: Path, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXDEX_")}
    env["PYTHONPATH"] = str(tree)
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "probe_tree.py"), *args],
        env=env, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"probe_tree.py {args[0]} under {tree} failed:\n{result.stderr}")
    out: dict[str, Any] = json.loads(result.stdout)
    if Path(out["tree"]) != tree.resolve():
        raise SystemExit(f"the child imported pixdex from {out['tree']}, not {tree}")
    return out


def _merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best of several timing runs: the smallest time per file, the highest rate."""
    merged = dict(runs[0])
    merged["files"] = [dict(row) for row in runs[0]["files"]]
    for run in runs[1:]:
        for row, other in zip(merged["files"], run["files"], strict=True):
            for key in ("decode_ms", "decode_cpu_ms", "prepare_ms", "prepare_cpu_ms",
                        "decode_warm_ms", "decode_warm_cpu_ms",
                        "decode_page_faults"):
                row[key] = min(row[key], other[key])
        for key, value in run.items():
            if key.startswith("worker_load_images_per_s"):
                merged[key] = max(merged[key], value)
            elif key.startswith("worker_load_cpu_ms"):
                merged[key] = min(merged[key], value)
    merged["rounds"] = len(runs)
    return merged


def _timings(trees: dict[str, Path], files_json: Path, workers: int,
             rounds: int) -> dict[str, Any]:
    threads = "1" if workers == 1 else f"1,{workers}"
    out: dict[str, Any] = {}
    for profile in PROFILES:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for round_ in range(rounds):
            order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
            for name in order:
                log(f"    timing {profile}, {name}, round {round_ + 1}/{rounds}")
                runs[name].append(_child(trees[name], "timing", "--files", str(files_json),
                                         "--profile", profile, "--threads", threads))
        out[profile] = {}
        for name, tree_runs in runs.items():
            merged = _merge(tree_runs)
            out[profile][name] = {
                "floor": merged["floor"],
                "decode": summarise(merged["files"], "decode_cpu_ms"),
                "prepare": summarise(merged["files"], "prepare_cpu_ms"),
                "decode_warm": summarise(merged["files"], "decode_warm_cpu_ms"),
                "decode_wall": summarise(merged["files"], "decode_ms"),
                "prepare_wall": summarise(merged["files"], "prepare_ms"),
                "decode_page_faults_median": {
                    kind: statistics.median(r["decode_page_faults"] for r in merged["files"]
                                            if kind in ("all", r["kind"]))
                    for kind in ("phone", "screenshot", "web", "all")
                },
                **{k: v for k, v in merged.items() if k.startswith("worker_load")},
                "decoded_sizes": sorted({
                    f"{r['kind']} {r['size'][0]}x{r['size'][1]} -> "
                    f"{r['decoded_size'][0]}x{r['decoded_size'][1]}"
                    for r in merged["files"]
                }),
            }
        before, after = out[profile]["before"], out[profile]["after"]
        out[profile]["speedup"] = {
            step: {kind: round(before[step][kind]["median_ms"] / after[step][kind]["median_ms"], 2)
                   for kind in after[step]}
            for step in ("decode", "decode_warm", "prepare", "decode_wall", "prepare_wall")
        }
    return out


def _end_to_end(stages: dict[str, Any], after: dict[str, Any], before: dict[str, Any],
                args: argparse.Namespace) -> dict[str, Any]:
    decode_rate = stages[f"decode_alone_images_per_s_{args.decode_workers}_threads"]
    model_rate = stages["model_alone_images_per_s"]
    slower = min(decode_rate, model_rate)
    # Here both stages run on the same cores: if each kept every core busy alone, the
    # best a perfect pipeline could do is the harmonic combination of the two rates.
    shared_bound = 1 / (1 / decode_rate + 1 / model_rate)
    return {
        "after_images_per_s": after["images_per_s"],
        "before_images_per_s": before["images_per_s"],
        "speedup": round(after["images_per_s"] / before["images_per_s"], 2),
        "after_cpu_ms_per_image": after["cpu_ms_per_image"],
        "before_cpu_ms_per_image": before["cpu_ms_per_image"],
        "cpu_saving": round(before["cpu_ms_per_image"] / after["cpu_ms_per_image"], 2),
        "after_page_faults_per_image": after["page_faults_per_image"],
        "before_page_faults_per_image": before["page_faults_per_image"],
        "decode_alone_images_per_s": decode_rate,
        "model_alone_images_per_s": model_rate,
        "stages_cpu_ms_per_image": round(stages["decode_alone_cpu_ms_per_image"]
                                         + stages["model_alone_cpu_ms_per_image"], 2),
        "slower_stage_images_per_s": slower,
        "ratio_to_slower_stage": round(after["images_per_s"] / slower, 3),
        "shared_cores_bound_images_per_s": round(shared_bound, 2),
        "ratio_to_shared_cores_bound": round(after["images_per_s"] / shared_bound, 3),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def _gpu_sizing(timings: dict[str, Any], cpus: int) -> dict[str, Any]:
    sizing: dict[str, Any] = {"source": PUBLISHED_SOURCE}
    for profile in PROFILES:
        after = timings[profile]["after"]
        gpu = PUBLISHED_GPU[profile]["images_per_s"]
        # One worker = one core busy with the worker load (read, sha256, prepare): its
        # rate is 1000 / CPU ms per image (CPU time: see probe_tree._best).
        per_worker = {
            "mix": round(1000 / after["worker_load_cpu_ms_per_image_1_threads"], 2),
            "phone": after["prepare"]["phone"]["images_per_s"],
            "screenshot": after["prepare"]["screenshot"]["images_per_s"],
            "web": after["prepare"]["web"]["images_per_s"],
        }
        before_phone = timings[profile]["before"]["prepare"]["phone"]["images_per_s"]
        sizing[profile] = {
            "published_gpu_images_per_s": gpu, **PUBLISHED_GPU[profile],
            "per_worker_images_per_s": per_worker,
            "workers_needed": {kind: math.ceil(gpu / rate) for kind, rate in per_worker.items()},
            "workers_needed_phone_before": math.ceil(gpu / before_phone),
            "this_machine_cpus": cpus,
        }
    return sizing


def run(args: argparse.Namespace) -> None:
    from pixdex.config import Settings
    from pixdex.engines import get_model
    from pixdex.storage.connection import close_pools, connect
    from pixdex.storage.embedded import stop_server

    home = args.home.resolve()
    created = not home.exists()
    folder = home / "mix"
    settings = Settings(home=home, decode_workers=args.decode_workers,
                        batch_size=args.batch_size, providers="cpu")
    cpus = len(os.sched_getaffinity(0))
    result: dict[str, Any] = {
        "images": args.images,
        "machine": {"cpus": cpus, "platform": platform.platform(),
                    "python": platform.python_version(), "onnxruntime": ort.__version__,
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "settings": {"decode_workers": settings.decode_workers,
                     "batch_size": settings.batch_size, "model": settings.model},
        "baseline_ref": args.baseline_ref,
    }
    try:
        log(f"generating {args.images} files in {folder}")
        started = time.perf_counter()
        files = make_mix(folder, args.images, args.seed)
        kinds: dict[str, dict[str, Any]] = {}
        for f in files:
            entry = kinds.setdefault(f.kind, {"count": 0, "bytes": 0, "formats": {}})
            entry["count"] += 1
            entry["bytes"] += f.bytes
            entry["formats"][f.format] = entry["formats"].get(f.format, 0) + 1
        for entry in kinds.values():
            entry["mean_mib"] = round(entry.pop("bytes") / entry["count"] / 2**20, 2)
        result["files"] = {"generate_seconds": round(time.perf_counter() - started, 1),
                           "kinds": kinds,
                           "phone_orientations": {
                               str(o): sum(f.kind == "phone" and f.orientation == o
                                           for f in files) for o in (1, 3, 6, 8)}}
        # Per-file timings on every k-th file (all kinds, in their proportions), so that
        # each tree gets --rounds alternated rounds in reasonable time.
        step = max(1, len(files) // args.timing_files)
        timed = files[::step]
        result["files"]["timed"] = {kind: sum(f.kind == kind for f in timed)
                                    for kind in ("phone", "screenshot", "web")}
        files_json = home / "files.json"
        files_json.write_text(json.dumps([{"path": f.path, "kind": f.kind} for f in timed]))
        trees = {"before": baseline_tree(args.baseline_ref, home),
                 "after": REPO / "layers"}

        log("building the ONNX graph once per home (kept out of the timings)")
        get_model(settings=settings).embed_pixels(np.zeros((1, 3, 224, 224), np.float32))
        log("starting the embedded database (kept out of the timings)")
        with connect(settings) as conn:
            conn.execute("SELECT 1")

        log("1. decoding per file, before and after")
        result["decode"] = _timings(trees, files_json, args.decode_workers, args.rounds)

        result["end_to_end_rounds"] = []
        common = ("--folder", str(folder), "--home", str(home),
                  "--workers", str(args.decode_workers), "--batch", str(args.batch_size))
        for round_ in range(args.e2e_rounds):
            log(f"2-3. round {round_ + 1}/{args.e2e_rounds}: the stages alone (after)")
            stages = _child(trees["after"], "stages", *common)
            log(f"    {stages}")
            runs = {}
            order = ("after", "before") if round_ % 2 == 0 else ("before", "after")
            for name in order:
                log(f"      end to end: ingest(), {name}")
                runs[name] = _child(trees[name], "ingest", *common,
                                    "--dataset", f"mix-{name}-{round_}")
                log(f"    {runs[name]}")
            result["end_to_end_rounds"].append(
                _end_to_end(stages, runs["after"], runs["before"], args))
        result["end_to_end"] = {
            key: round(statistics.median(r[key] for r in result["end_to_end_rounds"]), 3)
            for key in result["end_to_end_rounds"][0] if key != "load_average"
        }
        log(f"    median over rounds: {result['end_to_end']}")
        result["gpu_sizing"] = _gpu_sizing(result["decode"], cpus)
        result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(summary(result))
        print(f"\nwritten: {args.out}")
    finally:
        close_pools()
        if not args.keep:
            stop_server(settings.pgdata_dir)
            if created:
                shutil.rmtree(home, ignore_errors=True)


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"{result['images']} files, {result['machine']['cpus']} CPUs, "
        f"before = {result['baseline_ref']}, after = this checkout",
        "", "| file kind | step | before ms | after ms | speedup |", "|---|---|---:|---:|---:|",
    ]
    lite0 = result["decode"]["efficientnet-lite0"]
    for kind in ("phone", "screenshot", "web", "all"):
        for step in ("decode", "decode_warm", "prepare"):
            lines.append(
                f"| {kind} | {step} | {lite0['before'][step][kind]['median_ms']} "
                f"| {lite0['after'][step][kind]['median_ms']} | {lite0['speedup'][step][kind]} |"
            )
    e2e = result["end_to_end"]
    lines += [
        "", f"end to end (median of {len(result['end_to_end_rounds'])} rounds): before "
        f"{e2e['before_images_per_s']} images/s, after {e2e['after_images_per_s']} images/s "
        f"({e2e['speedup']}x); CPU ms per image {e2e['before_cpu_ms_per_image']} -> "
        f"{e2e['after_cpu_ms_per_image']}",
        f"stages alone (after): decode {e2e['decode_alone_images_per_s']} / model "
        f"{e2e['model_alone_images_per_s']} images/s; end to end / slower stage "
        f"{e2e['ratio_to_slower_stage']}; / shared-cores bound "
        f"{e2e['ratio_to_shared_cores_bound']}",
    ]
    for profile in PROFILES:
        sizing = result["gpu_sizing"][profile]
        lines.append(
            f"{profile}: GPU {sizing['published_gpu_images_per_s']} images/s published; one "
            f"worker {sizing['per_worker_images_per_s']} images/s -> workers "
            f"{sizing['workers_needed']}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline-ref", default=BASELINE_REF,
                        help="git ref measured as 'before' (--mix)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternated timing rounds per tree (--mix)")
    parser.add_argument("--timing-files", type=int, default=80,
                        help="about this many of the files get per-file timings (--mix)")
    parser.add_argument("--e2e-rounds", type=int, default=2,
                        help="rounds of stages alone + ingest after + ingest before (--mix)")


def main_mix(args: argparse.Namespace) -> None:
    if args.home is None:
        args.home = Path(tempfile.gettempdir()) / "pixdex-bench-ingest-mix"
    if args.out is None:
        args.out = RESULTS / "ingest-mix.json"
    run(args)
