"""Fit a model's similarity calibration: cosines of augmented copies vs unrelated pairs.

Embeds the labelled photos of ``tests/tag_evaluation.py`` (scikit-image's and
scikit-learn's bundled pictures) and eight edited copies of each (crop to 75 %, mirror,
JPEG quality 30, brightness x0.6, rotation 10 degrees, half size, grayscale, saturation
x1.6). Copy pairs: an original with each of its copies. Unrelated pairs: every pair of
images of two different photos. The anchors of :mod:`pixdex.app.calibration` are the
median and 99th percentile of the unrelated cosines and the median copy cosine.

Usage: ``.venv/bin/python bench/bench_calibration.py [--model NAME] [--out FILE]``;
default ``--out`` is the shipped ``layers/pixdex/app/data/similarity-calibration.json``
(the fit is merged into it); the figures go to ``bench/results/calibration.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository: tests/

from pixdex.app.calibration import CALIBRATION_FILE, Calibration  # noqa: E402
from pixdex.config import Settings  # noqa: E402
from pixdex.engines import get_model  # noqa: E402
from tests.tag_evaluation import load_labelled_photos  # noqa: E402


def _jpeg(picture: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def copies(picture: Image.Image) -> list[Image.Image]:
    w, h = picture.size
    return [
        picture.crop((w // 8, h // 8, w - w // 8, h - h // 8)),
        ImageOps.mirror(picture),
        _jpeg(picture, 30),
        ImageEnhance.Brightness(picture).enhance(0.6),
        picture.rotate(10, expand=False, fillcolor=(0, 0, 0)),
        picture.resize((max(1, w // 2), max(1, h // 2))),
        ImageOps.grayscale(picture).convert("RGB"),
        ImageEnhance.Color(picture).enhance(1.6),
    ]


def measure(model_name: str, settings: Settings) -> tuple[list[float], list[float]]:
    photos = load_labelled_photos()
    model = get_model(model_name, settings)
    groups: list[np.ndarray] = []
    for picture in photos.values():
        batch = [picture, *copies(picture)]
        vectors = np.asarray(model.embed_images(batch).embeddings, dtype=np.float64)
        groups.append(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    copy = [float(g[0] @ g[k]) for g in groups for k in range(1, len(g))]
    unrelated = [
        float(x @ y)
        for i, a in enumerate(groups) for b in groups[i + 1:]
        for x in a for y in b
    ]  # fmt: skip
    return copy, unrelated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--home", type=Path, default=None, help="PIXDEX_HOME (model cache)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "layers/pixdex/app/data" / CALIBRATION_FILE
    )
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="pixdex-bench-"))
    settings = Settings(home=home, providers="cpu")
    copy, unrelated = measure(args.model, settings)
    fit = Calibration(
        model=args.model,
        unrelated_median=round(float(np.median(unrelated)), 4),
        unrelated_p99=round(float(np.percentile(unrelated, 99)), 4),
        copy_median=round(float(np.median(copy)), 4),
    )
    sims_copy = [fit.similarity(c) for c in copy]
    sims_unrelated = [fit.similarity(c) for c in unrelated]
    figures = {
        "model": args.model,
        "copy_pairs": len(copy),
        "unrelated_pairs": len(unrelated),
        "copy_cosine": {"min": min(copy), "p5": float(np.percentile(copy, 5)),
                        "median": float(np.median(copy))},
        "unrelated_cosine": {"median": float(np.median(unrelated)),
                             "p99": float(np.percentile(unrelated, 99)), "max": max(unrelated)},
        "fit": {"unrelated_median": fit.unrelated_median, "unrelated_p99": fit.unrelated_p99,
                "copy_median": fit.copy_median},
        "at_similarity_0.6": {
            "copies_kept": sum(s >= 0.6 for s in sims_copy) / len(copy),
            "unrelated_kept": sum(s >= 0.6 for s in sims_unrelated) / len(unrelated),
            "raw_cosine": fit.cosine(0.6),
        },
    }  # fmt: skip
    existing = json.loads(args.out.read_text()) if args.out.is_file() else {"models": {}}
    existing.setdefault("method", "anchors: unrelated median -> 0, unrelated p99 -> 0.5, "
                        "augmented-copy median -> 1; bench/bench_calibration.py")
    existing["models"][args.model] = figures["fit"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(existing, indent=1, sort_keys=True) + "\n")
    results = ROOT / "bench" / "results" / "calibration.json"
    results.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
