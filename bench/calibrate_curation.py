"""Calibrate the five near-duplicate levels' cosine thresholds with the offline model.

Embeds scikit-image's photos and their augmented copies (bench/curation_photos.py: crop,
resize, JPEG re-encode, flip, colour shift, blur, light and strong) with the default model
(EfficientNet-Lite0, in process) and prints, per augmentation, the cosine between copy and
original, and the highest cosine between two different photos (what no level may reach).

    PYTHONPATH=layers:. nice -n 19 .venv/bin/python bench/calibrate_curation.py

Results: bench/results/curation-calibration.json.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.pipeline import analyse, prepare
from tests.curation_photos import AUGMENTATIONS, photos, png_bytes


def main() -> None:
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="pixdex-calib-")))
    model = get_model(settings.model, settings)
    originals = photos()
    names = sorted(originals)

    def embed(image_bytes: list[bytes]) -> np.ndarray:
        prepared = [prepare(data, model, settings) for data in image_bytes]
        return np.stack([a.embedding for a in analyse(model, prepared, settings)])

    base = embed([png_bytes(originals[n]) for n in names])
    sims = base @ base.T
    np.fill_diagonal(sims, -1)
    result: dict[str, object] = {
        "photos": len(names),
        "unrelated_max": float(sims.max()),
        "unrelated_p99": float(np.quantile(sims[sims > -1], 0.99)),
    }
    per_aug: dict[str, dict[str, float]] = {}
    for strength, augs in AUGMENTATIONS.items():
        for aug, apply in augs.items():
            copies = embed([png_bytes(apply(originals[n])) for n in names])
            cos = np.sum(copies * base, axis=1)
            per_aug[f"{strength}/{aug}"] = {"min": float(cos.min()), "mean": float(cos.mean())}
            print(f"{strength:6s} {aug:7s} min {cos.min():.3f} mean {cos.mean():.3f}")
    result["copies"] = per_aug
    print(f"unrelated max {result['unrelated_max']:.3f} p99 {result['unrelated_p99']:.3f}")
    out = Path(__file__).parent / "results" / "curation-calibration.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
