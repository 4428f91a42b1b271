"""The quick-start demo: write sample photos, index them, run example searches.

The photos ship inside scikit-image (no download). Next to each original some are
written as edited copies (flipped, cropped, darkened, blurred, recompressed) so that the
demo shows near-duplicates coming back first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from pixdex.app.ingest import ingest
from pixdex.app.search import encode_query_image, search
from pixdex.app.sources import local_items
from pixdex.config import Settings
from pixdex.models import SearchPage, SearchQuery, UserMetadata

DATASET = "samples"
_PHOTOS = (
    "astronaut", "camera", "chelsea", "coffee", "coins", "clock", "colorwheel",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
    "text", "brick", "grass", "gravel",
)
_EDITED = ("chelsea", "coffee", "rocket", "astronaut")


def _photo(name: str) -> Image.Image:
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    return Image.fromarray(array).convert("RGB")


def write_samples(folder: Path) -> Path:
    """Write the sample photos (and edited copies) as files under ``folder``."""
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    (folder / "edited").mkdir(parents=True, exist_ok=True)
    for name in _PHOTOS:
        target = folder / "photos" / f"{name}.png"
        if not target.exists():
            _photo(name).save(target)
    for name in _EDITED:
        image = _photo(name)
        width, height = image.size
        edits = {
            "flipped": ImageOps.mirror(image),
            "cropped": image.crop((width // 10, height // 10, width - width // 10, height)),
            "darker": ImageEnhance.Brightness(image).enhance(0.2),
            "blurred": image.filter(ImageFilter.GaussianBlur(6)),
        }
        for edit, picture in edits.items():
            target = folder / "edited" / f"{name}_{edit}.jpg"
            if not target.exists():
                picture.save(target, quality=60)
    return folder


def _show(title: str, page: SearchPage, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"search": title, **page.model_dump(mode="json")}))
        return
    print(f"\n== {title}  ({page.total} match(es))")
    for rank, hit in enumerate(page.results, start=1):
        objects = ", ".join(list(hit.auto_tags.objects)[:2]) or "-"
        attributes = ", ".join(hit.auto_tags.attributes) or "-"
        print(
            f"  {rank:2d}. {hit.score:6.3f}  {hit.folder.rstrip('/')}/{hit.name:<28}"
            f" objects: {objects:<30} attributes: {attributes}"
        )


def run_demo(settings: Settings, *, as_json: bool = False) -> None:
    samples = write_samples(settings.home / "samples")
    selection = local_items([samples], folder=None, meta=UserMetadata(user_tags=["demo"]))
    report = ingest(selection.items, DATASET, settings=settings)
    if as_json:
        print(report.model_dump_json(include={"indexed", "skipped", "failed"}))
    else:
        print(
            f"indexed {report.indexed}, skipped {report.skipped} (unchanged), "
            f"failed {report.failed} from {samples}"
        )
    query_file = samples / "edited" / "chelsea_flipped.jpg"
    vector = encode_query_image(query_file.read_bytes(), settings=settings)
    _show(
        f"like {query_file.name}",
        search(SearchQuery(dataset=DATASET, like_vector=vector, limit=5), settings),
        as_json,
    )
    _show(
        "objects: tabby cat, espresso",
        search(SearchQuery(dataset=DATASET, objects=["tabby cat,espresso"], limit=5), settings),
        as_json,
    )
    _show(
        'prompt: "a cup of coffee"',
        search(SearchQuery(dataset=DATASET, prompt="a cup of coffee", limit=5), settings),
        as_json,
    )
    _show(
        "attributes: dark OR blurry",
        search(SearchQuery(dataset=DATASET, attributes=["dark,blurry"], limit=5), settings),
        as_json,
    )
