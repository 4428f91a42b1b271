"""The one image pipeline (pixdex.pipeline) decodes at the size its consumers need: ingest,
the inference server and query images all get the same reduced decode (issue 13)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pixdex.app.search import encode_query_image
from pixdex.config import Settings
from pixdex.embedder.protocol import ImageInput, InvocationRequest
from pixdex.engines import get_model
from pixdex.imaging import ATTRIBUTES_FLOOR, SizeFloor, compute_attributes, decode_image
from pixdex.inference.base import EmbeddingModel, ModelSpec
from pixdex.inference.pixels import input_side
from pixdex.inference.specs import EFFICIENTNET_LITE0_SPEC
from pixdex.models import BoundingBox
from pixdex.pipeline import RESAMPLING_MARGIN, analyse, decode_floor, model_floor, prepare
from pixdex.serving.engine import Engine


def _model(spec: ModelSpec, **extra: object) -> EmbeddingModel:
    return SimpleNamespace(spec=spec, **extra)  # type: ignore[return-value]


def test_the_floor_is_every_model_input_and_the_attributes() -> None:
    lite0 = _model(EFFICIENTNET_LITE0_SPEC)
    assert RESAMPLING_MARGIN == 1.5
    assert model_floor(lite0) == SizeFloor(short=336)
    assert decode_floor([lite0]) == SizeFloor(short=336, long=480)
    assert decode_floor([]) == ATTRIBUTES_FLOOR
    # A SigLIP2-so400m-384 export squashes to 384: its input side is its manifest's size.
    siglip = _model(ModelSpec("siglip2-so400m", 1152, True, True, 384), input_side=384)
    assert input_side(siglip) == 384
    assert decode_floor([lite0, siglip]) == SizeFloor(short=576, long=480)
    # A query region needs the model's input inside the region.
    box = BoundingBox(x=0.5, y=0.5, width=0.5, height=0.25)
    assert model_floor(lite0, box) == SizeFloor(short=336 * 4)


def _portrait_jpeg(picture: Image.Image) -> tuple[bytes, Image.Image]:
    """A 12 MP phone photo shot in portrait: stored landscape with EXIF orientation 6."""
    upright = Image.new("RGB", (3024, 4032))
    for top in range(0, 4032, picture.height):
        for left in range(0, 3024, picture.width):
            upright.paste(picture, (left, top))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue(), upright


@pytest.fixture(scope="module")
def phone(photos: dict[str, Image.Image]) -> tuple[bytes, Image.Image]:
    return _portrait_jpeg(photos["coffee"])


def _full(data: bytes, settings: Settings) -> Image.Image:
    decoded = decode_image(
        data, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes
    )
    assert decoded.image.size == (3024, 4032)
    return decoded.image


def test_prepare_decodes_reduced_and_keeps_the_original_facts(
    settings: Settings, phone: tuple[bytes, Image.Image]
) -> None:
    data, _ = phone
    model = get_model(settings.model, settings)
    prepared = prepare(data, model, settings)
    assert (prepared.width, prepared.height, prepared.format) == (3024, 4032, "JPEG")
    assert prepared.pixels.shape == (1, 3, 224, 224)
    full = _full(data, settings)
    assert prepared.attributes.keys() == compute_attributes(full).keys()
    [analysis] = analyse(model, [prepared], settings)
    reference = model.embed_images([full])
    assert float(analysis.embedding @ reference.embeddings[0]) > 0.995
    assert reference.class_scores is not None and model.class_names is not None
    top = model.class_names[int(reference.class_scores[0].argmax())]
    assert max(analysis.tags.objects, key=analysis.tags.objects.__getitem__) == top


def test_the_inference_server_gets_the_same_decode(
    settings: Settings, phone: tuple[bytes, Image.Image]
) -> None:
    data, _ = phone
    engine = Engine(settings)
    try:
        response = engine.invoke(InvocationRequest(
            images=[ImageInput(base64=base64.b64encode(data).decode())]
        ))
    finally:
        engine.close()
    assert response.errors == [None]
    assert response.images[0] is not None
    assert (response.images[0].width, response.images[0].height) == (3024, 4032)
    model = get_model(settings.model, settings)
    [local] = analyse(model, [prepare(data, model, settings)], settings)
    assert response.embeddings[0] is not None
    np.testing.assert_allclose(np.asarray(response.embeddings[0]), local.embedding, atol=1e-5)


@pytest.fixture
def counted_decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """The size of every picture the query path decodes."""
    import pixdex.app.search as search_module

    sizes: list[tuple[int, int]] = []
    real = search_module.decode_image

    def spy(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        decoded = real(*args, **kwargs)  # type: ignore[arg-type]
        sizes.append(decoded.image.size)
        return decoded

    monkeypatch.setattr(search_module, "decode_image", spy)
    yield sizes


def test_query_images_are_decoded_at_the_model_size(
    settings: Settings, phone: tuple[bytes, Image.Image], counted_decodes: list[tuple[int, int]]
) -> None:
    data, upright = phone
    model = get_model(settings.model, settings)
    vector = np.asarray(encode_query_image(data, settings=settings), dtype=np.float32)
    # Only the model's floor (336 px on the shorter side): JPEG DCT scaling by 8.
    assert counted_decodes[-1] == (378, 504)
    reference = model.embed_images([_full(data, settings)]).embeddings[0]
    assert float(vector @ reference) > 0.99
    # A region keeps the model's input inside the region: decoded at 1/4 here.
    box = BoundingBox(x=0.0, y=0.0, width=0.5, height=0.5)
    region = np.asarray(encode_query_image(data, box=box, settings=settings), dtype=np.float32)
    assert counted_decodes[-1] == (756, 1008)
    crop = upright.crop((0, 0, 1512, 2016))
    assert float(region @ model.embed_images([crop]).embeddings[0]) > 0.99
