"""``pixdex search``: search a dataset by image, id, text prompt, tags and filters."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from pixdex.app.service.search_schemas import MAX_API_LIMIT
from pixdex.cli.common import EXIT_OK, first_error, parse_uuid
from pixdex.cli.results import page_lines
from pixdex.config import Settings
from pixdex.errors import InvalidInputError, NotFoundError
from pixdex.models import BoundingBox, SearchQuery

NAME = "search"


def page_size(text: str) -> int:
    """``--limit``: the HTTP API's page limit, so a search means the same through both."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_API_LIMIT:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_API_LIMIT}, got {value}")
    return value


def load_vector(file: str) -> list[float]:
    """A query vector from a numpy ``.npy`` file: shape ``(dim,)`` or ``(1, dim)``."""
    import numpy as np

    path = Path(file)
    if not path.is_file():
        raise NotFoundError(f"--vector-file: no such file {file!r}", field="vector_file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(
            f"--vector-file: {file} is not a numpy .npy file ({exc})", field="vector_file"
        ) from None
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number) or (
        array.ndim == 2 and array.shape[0] != 1) or array.ndim not in (1, 2) or array.size == 0:
        raise InvalidInputError(
            f"--vector-file: {file} must hold one vector of numbers, shape (dim,) or "
            f"(1, dim); it has shape {getattr(array, 'shape', '?')}", field="vector_file",
        )
    return [float(v) for v in array.reshape(-1)]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(NAME, help="search a dataset")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--like", metavar="FILE", help="query image file")
    parser.add_argument("--box", metavar="X,Y,W,H", help="region of --like, as fractions")
    parser.add_argument("--id", metavar="IMAGE_ID", help="search like this indexed image")
    parser.add_argument(
        "--vector-file", metavar="FILE.npy",
        help="a raw query vector (numpy .npy, shape (dim,) or (1, dim)) of --model, e.g. one "
        "of your own embeddings against vectors imported with `pixdex vectors import`",
    )
    parser.add_argument("--prompt", help="text to search for, e.g. 'a cat on a sofa'")
    parser.add_argument("--negative-prompt", help="what to push down, e.g. 'drawings'")
    parser.add_argument(
        "--image-weight", type=float, default=0.5,
        help="with --prompt and --like/--id (vision-language models): 0..1 share of the image",
    )
    parser.add_argument("--model", help="named vector to search (default: PIXDEX_MODEL)")
    parser.add_argument("--objects", action="append", default=[], help="comma list (OR)")
    parser.add_argument("--scenes", action="append", default=[], help="comma list (OR)")
    parser.add_argument("--attributes", action="append", default=[], help="comma list (OR)")
    parser.add_argument("--tag", action="append", default=[], help="user tag (all must match)")
    parser.add_argument("--class-name", action="append", default=[], help="annotation class")
    parser.add_argument("--folder")
    parser.add_argument("--batch-id")
    parser.add_argument("--annotation-job-id")
    parser.add_argument("--split")
    parser.add_argument(
        "--threshold", type=float,
        help="score floor: cosine similarity (-1..1), or for prompts on the offline model "
        "the weighted class probability (0..1)",
    )
    parser.add_argument(
        "--min-similarity", type=float,
        help="calibrated similarity floor (0..1, the same scale on every model: 0.6 "
        "visually related, 1.0 a typical edited copy); image searches only",
    )
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument(
        "--limit", type=page_size, default=50, help=f"1..{MAX_API_LIMIT} (default 50)"
    )
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.app.search import encode_query_image, search

    if args.box and not args.like:
        raise InvalidInputError("--box needs --like FILE (it selects a region of it)", field="box")
    vector = None
    if args.vector_file:
        others = [flag for flag, given in (("--like", args.like), ("--id", args.id),
                                           ("--prompt", args.prompt)) if given]
        if others:
            raise InvalidInputError(
                f"--vector-file is a query of its own: give it with filters, not with "
                f"{' and '.join(others)}", field="vector_file",
            )
        if not args.model:
            raise InvalidInputError(
                "--vector-file needs --model: the named vector it belongs to", field="model"
            )
        vector = load_vector(args.vector_file)
    like_vector = None
    if args.like:
        try:
            box = BoundingBox.parse(args.box) if args.box else None
        except (ValueError, ValidationError) as exc:
            raise InvalidInputError(f"--box: {first_error(exc)}", field="box") from None
        path = Path(args.like)
        if not path.is_file():
            raise NotFoundError(f"--like: no such file {args.like!r}", field="like")
        like_vector = encode_query_image(
            path.read_bytes(), box=box, model=args.model, settings=settings
        )
    query = SearchQuery(
        dataset=args.dataset,
        workspace=settings.workspace,
        like_vector=like_vector,
        like_image_id=parse_uuid(args.id, "id") if args.id else None,
        vector=vector,
        prompt=args.prompt, negative_prompt=args.negative_prompt,
        image_weight=args.image_weight, model=args.model,
        objects=args.objects, scenes=args.scenes, attributes=args.attributes,
        tags=args.tag, class_names=args.class_name, folder=args.folder,
        batch_id=args.batch_id, annotation_job_id=args.annotation_job_id, split=args.split,
        threshold=args.threshold, min_similarity=args.min_similarity, offset=args.offset,
        limit=args.limit,
    )
    page = search(query, settings)
    if args.json:
        print(page.model_dump_json())
    else:
        print("\n".join(page_lines(page, query)))
    return EXIT_OK

