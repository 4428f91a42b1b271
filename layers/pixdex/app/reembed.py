"""Add a named vector (model) to an already indexed dataset, without downtime.

``reembed(dataset, model)`` reads each indexed image's stored original, runs ``model`` on
it in batches and writes only the new model's vectors. Searches on the models the
dataset already has keep working throughout: nothing they read is touched or locked for
long (one short transaction per batch). It is idempotent and resumable: an image that
already has the vector is skipped, so a crashed or interrupted run is simply run again.
Images imported with their vectors (no file) have no picture to run a model on: they are
left out, and do not keep the dataset from listing the model. When every indexed image
with a file has the vector, the dataset lists the model (``dataset_models``)
and from then on ingest fills it for new images and searches may name it.

``model`` is an embedding model (the default one or an installed vision-language model),
or ``<model>-classes``: the offline model's ImageNet class probabilities, which prompt
search on datasets indexed before class vectors existed needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from pixdex.blobs import BlobRef, store_for
from pixdex.config import Settings, get_settings
from pixdex.engines import get_model
from pixdex.errors import InvalidInputError, PixdexError
from pixdex.imaging.decode import decode_image
from pixdex.inference.base import EmbeddingModel, ModelSpec
from pixdex.inference.pixels import model_pixels
from pixdex.inference.specs import CLASS_VECTOR_SUFFIX, class_vector_spec
from pixdex.pipeline import model_floor
from pixdex.storage import catalog, images
from pixdex.storage.catalog import Metric
from pixdex.storage.connection import Conn, connect

__all__ = ["ReembedReport", "reembed"]

_MAX_ERRORS_KEPT = 20


@dataclass
class ReembedReport:
    dataset: str
    model: str
    embedded: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, "key: reason"
    complete: bool = False  # every indexed image has the vector; the dataset lists it


@dataclass(frozen=True)
class _Target:
    runner: EmbeddingModel
    spec: ModelSpec
    metric: Metric
    classes: bool  # store the runner's class probabilities, not its embedding


def _target(model: str, settings: Settings) -> _Target:
    if model.endswith(CLASS_VECTOR_SUFFIX):
        base = get_model(model[: -len(CLASS_VECTOR_SUFFIX)], settings)
        spec = class_vector_spec(base.spec)
        if spec is None or spec.name != model:
            raise InvalidInputError(
                f"model {base.spec.name} has no class probabilities to store as {model}",
                field="model",
            )
        return _Target(base, spec, "ip", True)
    runner = get_model(model, settings)
    return _Target(runner, runner.spec, "cosine", False)


def _missing_page(
    conn: Conn, dataset_id: UUID, model: str, after: UUID | None, limit: int
) -> list[tuple[UUID, str]]:
    rows = conn.execute(
        "SELECT i.id, i.storage_key FROM images i WHERE i.dataset_id = %s"
        " AND i.status = 'indexed' AND i.storage_key IS NOT NULL"
        " AND (%s::uuid IS NULL OR i.id > %s::uuid)"
        " AND NOT EXISTS (SELECT 1 FROM image_embeddings e"
        " WHERE e.image_id = i.id AND e.model = %s) ORDER BY i.id LIMIT %s",
        (dataset_id, after, after, model, limit),
    ).fetchall()
    return [(UUID(str(r["id"])), str(r["storage_key"])) for r in rows]


def _pixels(key: str, target: _Target, settings: Settings) -> NDArray[np.float32]:
    ref = BlobRef.parse(key)
    data = store_for(ref).get(ref, max_bytes=settings.max_file_bytes)
    decoded = decode_image(
        data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes,
        floor=model_floor(target.runner),
    )
    picture: Image.Image = decoded.image
    return model_pixels(target.runner, [picture])


def reembed(
    dataset: str,
    model: str,
    *,
    workspace: str | None = None,
    settings: Settings | None = None,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReembedReport:
    """Compute ``model``'s vectors for every indexed image of ``dataset`` that lacks one."""
    settings = settings or get_settings()
    workspace = workspace or settings.workspace
    batch_size = settings.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise InvalidInputError("batch size must be at least 1", field="batch_size")
    target = _target(model, settings)
    with connect(settings) as conn:
        dataset_id = catalog.get_dataset(conn, workspace, dataset).id
        catalog.register_model(conn, target.spec, metric=target.metric)
    report = ReembedReport(dataset, target.spec.name)
    after: UUID | None = None
    while True:
        with connect(settings) as conn:
            page = _missing_page(conn, dataset_id, target.spec.name, after, batch_size)
        if not page:
            break
        after = page[-1][0]
        ready: list[tuple[UUID, NDArray[np.float32]]] = []
        for image_id, key in page:
            try:
                ready.append((image_id, _pixels(key, target, settings)))
            except (PixdexError, OSError) as exc:
                report.failed += 1
                if len(report.errors) < _MAX_ERRORS_KEPT:
                    reason = exc.message if isinstance(exc, PixdexError) else str(exc)
                    report.errors.append(f"{key}: {reason}")
        if ready:
            output = target.runner.embed_pixels(np.concatenate([p for _, p in ready]))
            vectors = output.class_scores if target.classes else output.embeddings
            assert vectors is not None
            with connect(settings) as conn:
                images.write_vectors(
                    conn, target.spec.name,
                    [(i, dataset_id, vectors[row]) for row, (i, _) in enumerate(ready)],
                )
            report.embedded += len(ready)
        if progress:
            progress(len(page))
    with connect(settings) as conn:
        # Images indexed while this ran (ingest does not fill an unlisted model) or that
        # failed here keep the dataset from listing the model; a re-run picks them up.
        if not _missing_page(conn, dataset_id, target.spec.name, None, 1):
            catalog.add_dataset_model(conn, dataset_id, target.spec.name)
            report.complete = True
    return report
