"""Offline text prompts: top-1 / top-3 accuracy of prompt -> ImageNet-class ranking.

Runs the real EfficientNet-Lite0 on scikit-image's bundled photos, ranks them for each
labeled prompt of ``tests.prompt_evaluation`` and prints a table (markdown with
``--markdown``). Usage: ``.venv/bin/python bench/bench_prompts.py [--markdown]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests/

from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.text import prompt_to_class_weights
from tests.prompt_evaluation import evaluate_prompts, load_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--home", type=Path, default=None, help="PIXDEX_HOME (model cache)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="pixdex-bench-"))
    settings = Settings(home=home, providers="cpu")
    photos = load_photos()
    model = get_model(settings=settings)
    out = model.embed_images(list(photos.values()))
    assert out.class_scores is not None
    probs = dict(zip(photos, out.class_scores, strict=True))
    started = time.perf_counter()
    for _ in range(100):
        prompt_to_class_weights("an orange tabby cat with green eyes, not drawings")
    per_prompt_ms = (time.perf_counter() - started) * 10
    ev = evaluate_prompts(probs)

    print(f"photos: {len(photos)}, labeled prompts: {len(ev.results)}")
    print("| prompt | relevant | conf. | rank | best photo (score) | relevant score |")
    print("|---|---|---|---|---|---|")
    for r in ev.results:
        best, score = r.ranking[0]
        rel = max((s for n, s in r.ranking if n in r.relevant), default=0.0)
        rank = "-" if r.rank is None else str(r.rank)
        relevant = ", ".join(sorted(r.relevant))
        print(
            f"| {r.prompt} | {relevant} | {r.confidence:.2f} | {rank} "
            f"| {best} ({score:.3f}) | {rel:.3f} |"
        )
    print()
    print(f"top-1 accuracy: {ev.top1:.3f}   top-3 accuracy: {ev.top3:.3f}")
    best_scores = ev.labeled_best_scores
    print(
        f"best score per labeled prompt: median {statistics.median(best_scores):.3f}, "
        f"min {min(best_scores):.3f}"
    )
    print("| out-of-vocabulary prompt | best score |")
    print("|---|---|")
    for prompt, score in ev.oov_scores:
        print(f"| {prompt} | {score:.4f} |")
    print(f"OOV best score: max {ev.oov_max:.4f}")
    print(f"prompt parsing: {per_prompt_ms:.3f} ms per prompt (after the lexicon is built)")


if __name__ == "__main__":
    main()
