"""``pixdex embedder serve | prepare``: the inference server on this machine.

``serve`` runs the same server as the GPU container (``GET /ping``, ``POST /invocations``)
with this machine's onnxruntime providers (``PIXDEX_PROVIDERS``): CPU here, CUDA in the
container. Point other pixdex processes at it with ``PIXDEX_EMBEDDER=http`` and
``PIXDEX_EMBEDDER_URL=http://HOST:PORT``. ``prepare`` builds the model files ahead of time
(the container image runs it at build time, so the endpoint starts without building).
"""

from __future__ import annotations

import argparse
import json

from pixdex.cli.common import EXIT_OK
from pixdex.config import Settings
from pixdex.errors import InvalidInputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("embedder", help="run the inference server (image embeddings, tags)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser("serve", help="serve GET /ping and POST /invocations")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.add_argument(
        "--max-request-bytes", type=int, default=None,
        help="largest request body accepted (default PIXDEX_MAX_REQUEST_BYTES)",
    )
    serve.add_argument(
        "--max-images", type=int, default=None,
        help="most images per request (default PIXDEX_MAX_IMAGES_PER_REQUEST)",
    )
    actions.add_parser("prepare", help="build the model files now (container image build)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "prepare":
        return _prepare(settings)
    if not 0 <= args.port <= 65535:
        raise InvalidInputError(f"--port must be 0-65535, got {args.port}", field="port")
    for name in ("max_request_bytes", "max_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise InvalidInputError(f"{flag} must be at least 1, got {value}", field=name)
    import logging

    from pixdex.serving.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        serve(
            settings.model_copy(update={"embedder": "local"}),
            args.host,
            args.port,
            max_request_bytes=args.max_request_bytes,
            max_images=args.max_images,
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # port in use, address not available
        raise InvalidInputError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", field="port"
        ) from exc
    return EXIT_OK


def _prepare(settings: Settings) -> int:
    from pixdex.serving.server import prepare

    spec = prepare(settings.model_copy(update={"embedder": "local"}))
    print(json.dumps({"model": spec.name, "dim": spec.dim, "ready": True}))
    return EXIT_OK
