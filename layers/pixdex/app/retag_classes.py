"""Re-tagging with the offline model's classes: generic labels and scenes for old rows.

Images indexed before the everyday labels and scene rules existed carry only ImageNet
class tags. Their class probabilities are stored (the ``<model>-classes`` vector), so
their tags are recomputed from those, with no image decoding and no model run, by the same
:func:`pixdex.taxonomy.offline.offline_tags` ingest uses; the pixel attributes computed at
ingest are kept. Page by page, one transaction each, like :mod:`pixdex.app.retag`.

(Tag filters already find such rows without a re-tag: "dog" also matches every breed's
name, see :mod:`pixdex.app.tag_match`; re-tagging adds the labels and scenes themselves.)
"""

from __future__ import annotations

from uuid import UUID

from pixdex.app.retag import RetagReport, retag_dataset
from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.errors import ConflictError, ModelCapabilityError
from pixdex.imaging.attributes import PIXEL_ATTRIBUTES
from pixdex.inference.imagenet import imagenet_class_names
from pixdex.inference.specs import class_vector_name
from pixdex.storage import catalog
from pixdex.storage.connection import connect
from pixdex.storage.taxonomy import embeddings_page, save_auto_tags
from pixdex.taxonomy import ZeroShotModel
from pixdex.taxonomy.offline import offline_tags
from pixdex.text.hierarchy import generic_labels

__all__ = ["CLASS_TAGS_VERSION", "retag", "retag_from_classes"]

CLASS_TAGS_VERSION = "imagenet-classes+wordnet-labels"


def retag(dataset: str, settings: Settings, model: str | None = None) -> RetagReport:
    """Re-tag ``dataset``: zero-shot with a vision-language model (``model`` or the
    dataset's first), else from the offline model's stored class probabilities."""
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, settings.workspace, dataset).id
        if model is None:
            taggers = [
                m for m in catalog.dataset_models(conn, dataset_id)
                if catalog.model_info(conn, m).encodes_text
            ]  # fmt: skip
            listed = catalog.dataset_models(conn, dataset_id)
            model = taggers[0] if taggers else settings.model
            if not taggers and class_vector_name(model) not in listed:
                raise ModelCapabilityError(
                    f"dataset {dataset!r} has no vision-language model to tag with and no "
                    f"{class_vector_name(model)} class scores to re-tag from; index images "
                    "into it, or add a model with `pixdex reembed --dataset NAME --model M`",
                    field="model",
                )
        encodes_text = catalog.model_info(conn, model).encodes_text
    if encodes_text:
        engine = get_model(model, settings)
        if not isinstance(engine, ZeroShotModel):
            raise ModelCapabilityError(f"model {model} cannot tag zero-shot", field="model")
        return retag_dataset(dataset, engine, settings)
    return retag_from_classes(dataset, model, settings)


def retag_from_classes(
    dataset: str, model: str, settings: Settings, *, page_size: int = 1000
) -> RetagReport:
    """Recompute every indexed image's objects and scenes from its class probabilities."""
    classes = class_vector_name(model)
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, settings.workspace, dataset).id
        if catalog.datasets_without_model(conn, [dataset_id], classes):
            raise ConflictError(
                f"dataset {dataset!r} has no {classes} class scores for every image; run "
                f"`pixdex reembed --dataset {dataset} --model {classes}` first",
                field="model",
            )
    names = imagenet_class_names()
    done = 0
    after: UUID | None = None
    while True:
        with connect(settings) as conn, conn.transaction():
            page = embeddings_page(conn, dataset_id, classes, after, page_size)
            if not page:
                break
            rows = []
            for image_id, probs, old in page:
                pixels = {k: v for k, v in old.attributes.items() if k in PIXEL_ATTRIBUTES}
                tags = offline_tags(
                    probs, names, pixels, threshold=settings.object_tag_threshold,
                    top_k=settings.object_tag_top_k,
                )
                rows.append((image_id, tags))
            save_auto_tags(conn, rows)
        done += len(page)
        after = page[-1][0]
    version = f"{CLASS_TAGS_VERSION}.{len(generic_labels())}"
    return RetagReport(dataset, model, version, done)
