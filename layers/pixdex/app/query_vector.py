"""The vector a similarity search ranks by: from a query image, a prompt, or both.

* Image only: the query image's (or indexed image's) embedding, cosine similarity.
* A raw vector (``vector``, with the ``model`` it belongs to, e.g. an imported one): used
  as it is, ranked by the model's metric; it must have the model's dimension.
* Prompt, vision-language model (has a text encoder): the prompt's text embedding, cosine
  similarity against the model's image embeddings. ``negative_prompt`` subtracts its text
  embedding at weight :data:`NEGATIVE_WEIGHT`; with a query image as well, the normalised
  image and text vectors are blended ``image_weight * image + (1 - image_weight) * text``;
  the result is renormalised.
* Prompt, offline model (no text encoder): the prompt is mapped onto the 1000 ImageNet
  classes (:func:`pixdex.text.prompt_to_class_weights`) and images are ranked by inner
  product with their stored class probabilities (the ``<model>-classes`` named vector):
  the score is a weighted class probability in [0, 1]. ``negative_prompt`` excludes the
  classes it names. A prompt the classes cannot express matches nothing: an empty page
  with a warning, not confident nonsense. Combining with a query image is not possible
  there for a query image sent as bytes (the two live in different spaces) and is
  refused; an indexed image (``like_image``) has stored class probabilities, so prompt
  and image blend in class space: ``image_weight * unit(p_image) + (1 - image_weight) *
  prompt weights`` (Roboflow sends ``like_image`` and ``prompt`` together).
* ``model`` may name the class vector itself (``efficientnet-lite0-classes``): a prompt
  then ranks by it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.errors import ConflictError, InvalidInputError, ModelCapabilityError, NotFoundError
from pixdex.inference.specs import CLASS_VECTOR_SUFFIX, class_vector_name
from pixdex.models import SearchQuery
from pixdex.storage import catalog, images
from pixdex.storage.catalog import Metric
from pixdex.storage.connection import Conn
from pixdex.text import PromptMatch, prompt_to_class_weights

__all__ = ["NEGATIVE_WEIGHT", "QueryVector", "class_prompt_weights", "query_vector"]

# How strongly a negative prompt's text embedding is subtracted (vision-language models).
NEGATIVE_WEIGHT = 0.5
# The largest value a half-precision (halfvec) component holds.
HALF_MAX = 65504.0


@dataclass
class QueryVector:
    """What to rank by. ``vector`` is None when nothing can match (see ``warnings``)."""

    model: str
    dim: int
    metric: Metric
    vector: NDArray[np.float32] | None
    warnings: list[str] = field(default_factory=list)

    def score(self, distance: float) -> float:
        """pgvector's distance as a similarity score (higher is better)."""
        return 1.0 - distance if self.metric == "cosine" else -distance

    def max_distance(self, threshold: float) -> float:
        return 1.0 - threshold if self.metric == "cosine" else -threshold


def query_vector(
    conn: Conn, query: SearchQuery, dataset_ids: Sequence[UUID], dataset: str | None,
    settings: Settings, *, known: catalog.ModelInfo | None = None,
) -> QueryVector:
    """``known``: the model's catalog entry when the caller already read it (a search reads
    it in its first statement); None: read here, ``NotFoundError`` if it is not there."""
    model = query.model or settings.model
    info = known if known is not None and known.name == model else catalog.model_info(
        conn, model)
    if query.vector is not None:
        raw = _raw_vector(query.vector, model, info.dim, info.metric)
        return QueryVector(model, info.dim, info.metric, raw)
    if query.prompt is None:
        vector = _image_vector(conn, query, model, info.dim)
        return QueryVector(model, info.dim, info.metric, vector)
    if info.encodes_text:
        _require_model_in(conn, dataset_ids, dataset, model, model)
        return _text_vector(conn, query, model, info.dim, settings)
    if query.like_vector is not None:
        raise ModelCapabilityError(
            f"model {model} has no text encoder, so a prompt cannot be combined with a query "
            "image; search by the prompt alone (ranked by ImageNet class scores), by the "
            "image alone, with an indexed image (like_image) and the prompt, or use a "
            "vision-language model (model=...) for combined queries",
            field="prompt",
        )
    return _class_vector(conn, query, model, dataset_ids, dataset)


def _require_model_in(
    conn: Conn, dataset_ids: Sequence[UUID], dataset: str | None, model: str, add: str
) -> None:
    missing = catalog.datasets_without_model(conn, dataset_ids, model)
    if not missing:
        return
    where = f"dataset {missing[0]!r}" if dataset is not None else (
        "dataset(s) " + ", ".join(repr(m) for m in missing[:5])
        + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    )
    raise ConflictError(
        f"{where} has no {model} vectors (indexed before it was added), so this prompt "
        f"search cannot rank its images; re-index it or run "
        f"`pixdex reembed --dataset NAME --model {add}`",
        field="prompt",
    )


def _image_vector(conn: Conn, query: SearchQuery, model: str, dim: int) -> NDArray[np.float32]:
    if query.like_vector is not None:
        vector = np.asarray(query.like_vector, dtype=np.float32)
        if vector.shape != (dim,):
            raise InvalidInputError(
                f"query vector has {vector.size} dimensions; model {model} uses {dim}",
                field="like_vector",
            )
    else:
        assert query.like_image_id is not None
        record = images.get_image(conn, query.workspace, query.like_image_id)
        stored = images.get_embedding(conn, query.like_image_id, model)
        if stored is None:
            reason = f" ({record.error})" if record.error else ""
            others = images.vector_models(conn, query.like_image_id)
            hint = f"; it has vectors of {', '.join(others)} (search with model=...)" if (
                others) else ""
            raise ConflictError(
                f"image {query.like_image_id} has no {model} embedding: its status is "
                f"{record.status.value}{reason}{hint}",
                field="like_image_id",
            )
        vector = stored
    if not np.isfinite(vector).all() or float(np.linalg.norm(vector)) == 0.0:
        raise InvalidInputError("query vector must be finite and non-zero", field="like_vector")
    return vector


def _raw_vector(
    values: Sequence[float], model: str, dim: int, metric: Metric
) -> NDArray[np.float32]:
    """The caller's vector as the query: the model's dimension, finite, not all zeros.
    Cosine ignores length, so it is made unit length (a query travels as half precision,
    where large components would overflow); an inner-product query must fit as it is."""
    vector = np.asarray(values, dtype=np.float32)
    if vector.shape != (dim,):
        raise InvalidInputError(
            f"vector has {vector.size} dimensions; model {model} expects {dim}", field="vector"
        )
    largest = float(np.abs(vector).max()) if np.isfinite(vector).all() else float("inf")
    if not 0.0 < largest < float("inf"):
        raise InvalidInputError(
            "vector must be finite (no NaN or infinity) and not all zeros", field="vector"
        )
    if metric == "cosine":
        return _unit(vector / np.float32(largest))
    if largest > HALF_MAX:
        raise InvalidInputError(
            f"vector components of model {model} must lie within +-{HALF_MAX:g} "
            "(half precision)", field="vector",
        )
    return vector


def _unit(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    out: NDArray[np.float32] = (vector / max(norm, 1e-12)).astype(np.float32)
    return out


def _text_vector(
    conn: Conn, query: SearchQuery, model: str, dim: int, settings: Settings
) -> QueryVector:
    assert query.prompt is not None
    encoder = get_model(model, settings)
    texts = [query.prompt.strip()]
    if query.negative_prompt is not None:
        texts.append(query.negative_prompt.strip())
    encoded = encoder.embed_texts(texts)
    text = encoded[0] - (NEGATIVE_WEIGHT * encoded[1] if len(texts) > 1 else 0.0)
    vector = _unit(np.asarray(text, dtype=np.float32))
    if query.has_image:
        picture = _unit(_image_vector(conn, query, model, dim))
        w = query.image_weight
        vector = _unit(w * picture + (1.0 - w) * vector)
    if vector.shape != (dim,):
        raise ConflictError(
            f"model {model} encodes text to {vector.size} dimensions but its images have {dim}",
            field="model",
        )
    return QueryVector(model, dim, "cosine", vector)


def class_prompt_weights(prompt: str, negative_prompt: str | None = None) -> PromptMatch:
    """The prompt's class weights with ``negative_prompt``'s classes excluded."""
    match = prompt_to_class_weights(prompt)
    if negative_prompt is None:
        return match
    excluded = prompt_to_class_weights(negative_prompt)
    weights = match.weights.copy()
    for term in excluded.terms:
        if term.negative:  # "not X" inside a negative prompt: nothing to exclude
            continue
        idx = np.asarray(term.classes, dtype=np.intp)
        weights[idx] = np.minimum(np.minimum(weights[idx], 0.0), -term.weight)
    return PromptMatch(
        prompt=match.prompt, weights=weights,
        terms=match.terms + tuple(
            type(t)(t.text, t.kind, t.classes, -t.weight, True)
            for t in excluded.terms if not t.negative
        ),
        unmatched=match.unmatched, confidence=match.confidence,
    )


def _class_vector(
    conn: Conn, query: SearchQuery, model: str, dataset_ids: Sequence[UUID], dataset: str | None
) -> QueryVector:
    assert query.prompt is not None
    # The class vector may be named directly: its own name, not "<name>-classes".
    classes = model if model.endswith(CLASS_VECTOR_SUFFIX) else class_vector_name(model)
    try:
        info = catalog.model_info(conn, classes)
    except NotFoundError:
        info = None
    if info is None or info.metric != "ip":
        raise ConflictError(
            f"no image has {classes} class scores yet, so prompt search is not available; "
            f"re-index the images or run `pixdex reembed --dataset NAME --model {classes}`",
            field="prompt",
        )
    _require_model_in(conn, dataset_ids, dataset, classes, classes)
    match = class_prompt_weights(query.prompt, query.negative_prompt)
    warnings = []
    if match.unmatched:
        warnings.append(
            f"not understood by {model}'s 1000 ImageNet classes: {', '.join(match.unmatched)}"
        )
    if match.no_match:
        warnings.append(
            f"nothing in the prompt {match.prompt!r} matches {model}'s ImageNet classes, so "
            "no image can be ranked by it; name an object or animal (e.g. 'a cat', 'a cup "
            "of espresso'), or use a vision-language model"
        )
        return QueryVector(classes, info.dim, "ip", None, warnings)
    vector = np.asarray(match.weights, dtype=np.float32)
    if query.like_image_id is not None:
        picture = _unit(_image_vector(conn, query, classes, info.dim))
        w = query.image_weight
        vector = (w * picture + (1.0 - w) * vector).astype(np.float32)
    return QueryVector(classes, info.dim, "ip", vector, warnings)
