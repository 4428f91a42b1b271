"""Offline auto-tags: precision and recall of generic object labels and scenes.

Runs the real EfficientNet-Lite0 on the labelled photos of ``tests/tag_evaluation.py``,
tags them as ingest does (:func:`pixdex.taxonomy.offline.offline_tags`) and scores the
everyday labels and scenes against the labels written down there. Writes
``bench/results/tags.json``. Usage: ``.venv/bin/python bench/bench_tags.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository: tests/

from pixdex.config import Settings  # noqa: E402
from pixdex.engines import get_model  # noqa: E402
from tests.tag_evaluation import LABELS, evaluate, load_labelled_photos, tag_photos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="PIXDEX_HOME (model cache)")
    args = parser.parse_args()
    settings = Settings(home=args.home or Path(tempfile.mkdtemp(prefix="pixdex-bench-")),
                        providers="cpu")  # fmt: skip
    photos = load_labelled_photos()
    out = get_model(settings=settings).embed_images(list(photos.values()))
    assert out.class_scores is not None
    tags = tag_photos(photos, out.class_scores)
    figures: dict[str, object] = {"photos": len(LABELS)}
    for kind, scores in evaluate(tags).items():
        figures[kind] = {
            "precision": round(scores.precision, 3), "recall": round(scores.recall, 3),
            "right": scores.true_positives, "wrong": scores.false_positives,
            "missed": scores.misses,
        }  # fmt: skip
    figures["tags"] = {
        name: {"objects": t.objects, "scenes": t.scenes} for name, t in tags.items()
    }
    (ROOT / "bench" / "results" / "tags.json").write_text(json.dumps(figures, indent=1) + "\n")
    for kind in ("objects", "scenes"):
        row = figures[kind]
        assert isinstance(row, dict)
        print(f"{kind}: precision {row['precision']} recall {row['recall']} "
              f"wrong {row['wrong']} missed {row['missed']}")


if __name__ == "__main__":
    main()
