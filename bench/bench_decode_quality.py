"""Tags and embeddings when decoding at the size the model needs, against full decoding.

The prompt evaluation (``tests/prompt_evaluation.py``, 18 photos, 47 labeled prompts, 14
out-of-vocabulary ones) and a near-duplicate evaluation, run on *files* the way users have
them, through ``pixdex.pipeline.prepare`` + ``analyse`` (what a row gets), under two
source trees: "before" (a baseline commit, extracted with ``git archive``, which decodes
every picture in full) and "after" (this checkout). Same files, same model
(EfficientNet-Lite0, CPU), each tree in a child process (``bench/probe_tree.py analyse``).

Files, per evaluation photo (scikit-image's, seeded):

* ``phone``: the photo upscaled to a 12 MP quality-90 phone JPEG, EXIF orientation 1, 6,
  8 or 3 in turn (stored turned, as cameras do): the prompt evaluation runs on these;
* near-duplicates, each a 12 MP phone JPEG too: mirrored (orientation 6), cropped to the
  central 80 % (orientation 1), darkened to 30 % (orientation 8), blurred (orientation 1);
* ``screen``: the photo centred on a 2560x1440 grey canvas, PNG;
* ``web``: the photo at its own size, JPEG q75: a control, not reduced (except retina,
  1411 px square, reduced by 2 to 706 px).

Near-duplicate evaluation: every file is a query against all the others; the relevant
answers are the other files of the same photo (6). Reported: precision at 6 (R-precision),
mean average precision, top-1 hit rate, and the margin between the least similar copy
and the most similar other photo. Also per file: cosine between the before and after
embeddings, top-1 class agreement, object tags and pixel attributes equal or not.

    .venv/bin/python bench/bench_decode_quality.py [--baseline-ref cfafc12]

Results: markdown on stdout and ``bench/results/decode-quality.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests/

from ingest_mix import BASELINE_REF, baseline_tree
from ingest_mix import _child as child
from photo_mix import load_photos, phone_jpeg

from tests.prompt_evaluation import PHOTOS, evaluate_prompts

RESULTS = Path(__file__).resolve().parent / "results"
ORIENTATIONS = (1, 6, 8, 3)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_files(folder: Path, seed: int) -> list[dict[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    photos = load_photos()
    rng = np.random.default_rng(seed)
    files: list[dict[str, str]] = []

    def phone(name: str, picture: Image.Image, orientation: int, kind: str) -> None:
        data, _, _ = phone_jpeg(picture, rng, orientation=orientation, style="upscaled")
        path = folder / f"{name}-{kind}.jpg"
        path.write_bytes(data)
        files.append({"path": str(path), "kind": kind, "photo": name})

    for i, name in enumerate(PHOTOS):
        picture = photos[name]
        width, height = picture.size
        phone(name, picture, ORIENTATIONS[i % 4], "phone")
        phone(name, ImageOps.mirror(picture), 6, "mirrored")
        phone(name, picture.crop((width // 10, height // 10, width - width // 10,
                                  height - height // 10)), 1, "cropped")
        phone(name, ImageEnhance.Brightness(picture).enhance(0.3), 8, "darkened")
        phone(name, picture.filter(ImageFilter.GaussianBlur(2)), 1, "blurred")
        screen = ImageOps.pad(picture, (2560, 1440), Image.Resampling.BICUBIC,
                              color=(236, 236, 236))
        path = folder / f"{name}-screen.png"
        screen.save(path)
        files.append({"path": str(path), "kind": "screen", "photo": name})
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=75)
        path = folder / f"{name}-web.jpg"
        path.write_bytes(buffer.getvalue())
        files.append({"path": str(path), "kind": "web", "photo": name})
    return files


def near_duplicates(embeddings: NDArray[np.float32], groups: list[str]) -> dict[str, float]:
    sims = embeddings @ embeddings.T
    labels = np.asarray(groups)
    precision, average_precision, top1, margins = [], [], [], []
    for i in range(len(labels)):
        order = [j for j in np.argsort(-sims[i]) if j != i]
        relevant = labels[order] == labels[i]
        count = int(relevant.sum())
        precision.append(float(relevant[:count].mean()))
        hits = np.cumsum(relevant)
        average_precision.append(float((hits[relevant] / (np.flatnonzero(relevant) + 1)).mean()))
        top1.append(float(relevant[0]))
        margins.append(float(np.sort(sims[i][order][relevant])[0]
                             - sims[i][order][~relevant].max()))
    return {
        "queries": len(labels),
        "precision_at_r": round(float(np.mean(precision)), 4),
        "mean_average_precision": round(float(np.mean(average_precision)), 4),
        "top1": round(float(np.mean(top1)), 4),
        "mean_margin": round(float(np.mean(margins)), 4),
        "queries_with_positive_margin": int(sum(m > 0 for m in margins)),
    }


def prompts(scores: NDArray[np.float32], files: list[dict[str, str]], kind: str) -> dict[str, Any]:
    probs = {f["photo"]: scores[i] for i, f in enumerate(files) if f["kind"] == kind}
    ev = evaluate_prompts(probs)
    return {
        "photos": len(probs), "labeled_prompts": len(ev.results),
        "top1": round(ev.top1, 4), "top3": round(ev.top3, 4),
        "oov_max": round(ev.oov_max, 4),
        "misses_top1": sorted(r.prompt for r in ev.results if r.rank != 1),
    }


def compare(before: dict[str, Any], after: dict[str, Any], files: list[dict[str, str]],
            class_names: list[str] | None) -> dict[str, Any]:
    e0, e1 = before["embeddings"], after["embeddings"]
    s0, s1 = before["class_scores"], after["class_scores"]
    cosine = (e0 * e1).sum(axis=1)
    per_kind: dict[str, Any] = {}
    for kind in dict.fromkeys(f["kind"] for f in files):
        rows = [i for i, f in enumerate(files) if f["kind"] == kind]
        values = cosine[rows]
        same_top1 = [int(s0[i].argmax() == s1[i].argmax()) for i in rows]
        objects_equal = [before["rows"][i]["objects"].keys() == after["rows"][i]["objects"].keys()
                         for i in rows]
        attributes_equal = [
            before["rows"][i]["attributes"].keys() == after["rows"][i]["attributes"].keys()
            for i in rows
        ]
        score_diffs = [
            abs(old.get(k, 0.0) - new.get(k, 0.0))
            for old, new in ((before["rows"][i]["attributes"], after["rows"][i]["attributes"])
                             for i in rows)
            for k in old.keys() | new.keys()
        ]
        sizes_equal = all(
            (before["rows"][i]["width"], before["rows"][i]["height"])
            == (after["rows"][i]["width"], after["rows"][i]["height"]) for i in rows
        )
        per_kind[kind] = {
            "files": len(rows),
            "cosine_min": round(float(values.min()), 5),
            "cosine_mean": round(float(values.mean()), 5),
            "top1_class_same": f"{sum(same_top1)}/{len(rows)}",
            "object_tags_same": f"{sum(objects_equal)}/{len(rows)}",
            "attribute_tags_same": f"{sum(attributes_equal)}/{len(rows)}",
            "attribute_score_max_diff": round(max(score_diffs, default=0.0), 3),
            "width_height_same": sizes_equal,
        }
    changed = []
    for i, f in enumerate(files):
        if s0[i].argmax() != s1[i].argmax() and class_names is not None:
            changed.append({
                "file": Path(f["path"]).name,
                "before": [class_names[int(s0[i].argmax())], round(float(s0[i].max()), 3)],
                "after": [class_names[int(s1[i].argmax())], round(float(s1[i].max()), 3)],
            })
    attributes_changed = [
        {"file": Path(f["path"]).name, "before": before["rows"][i]["attributes"],
         "after": after["rows"][i]["attributes"]}
        for i, f in enumerate(files)
        if before["rows"][i]["attributes"].keys() != after["rows"][i]["attributes"].keys()
    ]
    return {"per_kind": per_kind, "top1_changes": changed,
            "attribute_changes": attributes_changed,
            "cosine_min_all": round(float(cosine.min()), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "decode-quality.json")
    args = parser.parse_args()
    home = (args.home or Path(tempfile.mkdtemp(prefix="pixdex-bench-quality-"))).resolve()
    repo = Path(__file__).resolve().parents[1]
    try:
        log(f"writing the evaluation files under {home}")
        files = make_files(home / "files", args.seed)
        files_json = home / "files.json"
        files_json.write_text(json.dumps(files))
        trees = {"before": baseline_tree(args.baseline_ref, home), "after": repo / "layers"}
        runs: dict[str, dict[str, Any]] = {}
        for name, tree in trees.items():
            log(f"prepare + analyse, {name} ({tree})")
            out = home / f"{name}.npz"
            answer = child(tree, "analyse", "--files", str(files_json), "--home", str(home),
                           "--out", str(out))
            arrays = np.load(out)
            runs[name] = {"rows": answer["files"], "embeddings": arrays["embeddings"],
                          "class_scores": arrays["class_scores"]}
        from pixdex.inference.imagenet import imagenet_class_names

        names = list(imagenet_class_names())
        groups = [f["photo"] for f in files]
        result: dict[str, Any] = {
            "baseline_ref": args.baseline_ref,
            "files": {kind: sum(f["kind"] == kind for f in files)
                      for kind in dict.fromkeys(f["kind"] for f in files)},
            "prompts": {
                name: {kind: prompts(run["class_scores"], files, kind)
                       for kind in ("phone", "web")}
                for name, run in runs.items()
            },
            "near_duplicates": {
                name: near_duplicates(run["embeddings"], groups) for name, run in runs.items()
            },
            "before_vs_after": compare(runs["before"], runs["after"], files, names),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(summary(result))
        print(f"\nwritten: {args.out}")
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


def summary(result: dict[str, Any]) -> str:
    lines = ["| evaluation | before | after |", "|---|---:|---:|"]
    for kind in ("phone", "web"):
        for key in ("top1", "top3", "oov_max"):
            lines.append(f"| prompts on {kind} files: {key} | "
                         f"{result['prompts']['before'][kind][key]} | "
                         f"{result['prompts']['after'][kind][key]} |")
    for key in ("precision_at_r", "mean_average_precision", "top1", "mean_margin",
                "queries_with_positive_margin"):
        lines.append(f"| near-duplicates: {key} | {result['near_duplicates']['before'][key]} | "
                     f"{result['near_duplicates']['after'][key]} |")
    lines += ["", "| files | cosine min / mean | top-1 class same | object tags same | "
              "attribute tags same | attribute score max diff | width/height same |",
              "|---|---|---|---|---|---:|---|"]
    for kind, row in result["before_vs_after"]["per_kind"].items():
        lines.append(f"| {kind} ({row['files']}) | {row['cosine_min']} / {row['cosine_mean']} | "
                     f"{row['top1_class_same']} | {row['object_tags_same']} | "
                     f"{row['attribute_tags_same']} | {row['attribute_score_max_diff']} | "
                     f"{row['width_height_same']} |")
    for change in result["before_vs_after"]["top1_changes"]:
        lines.append(f"top-1 changed: {change['file']}: {change['before']} -> {change['after']}")
    for change in result["before_vs_after"]["attribute_changes"]:
        lines.append(f"attributes changed: {change['file']}: {change['before']} -> "
                     f"{change['after']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
