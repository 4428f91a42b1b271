"""``pixdex serve``: the HTTP API on this machine, and ``demo --serve``'s closing step.

Requests go through the same app as in AWS (see :mod:`pixdex.server`). API keys are
required unless ``--no-auth`` is given: then every request acts in ``PIXDEX_WORKSPACE``
with full rights, which is meant for a loopback-only, single-user setup.
"""

from __future__ import annotations

import argparse
import sys

from pixdex.cli.common import EXIT_OK
from pixdex.config import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="serve the HTTP API (Swagger UI at /docs)")
    add_options(parser)


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (loopback)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--no-auth", action="store_true",
                        help="no API keys: every request acts in PIXDEX_WORKSPACE")
    parser.add_argument("--quiet", action="store_true", help="no access log")


def _prepare(args: argparse.Namespace, settings: Settings) -> Settings:
    import logging

    from pixdex.app.admin import warm_up
    from pixdex.app.service.indexing import resume_waiting
    from pixdex.errors import InvalidInputError

    if not 0 < args.port < 65536:
        raise InvalidInputError(f"--port must be 1-65535, got {args.port}", field="port")
    if args.no_auth:
        settings = settings.model_copy(update={"require_api_keys": False})
    if not settings.require_api_keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        # Keyless is for one person on one machine: on any other address anyone who can
        # reach it would have full access to every image.
        raise InvalidInputError(
            f"without API keys (--no-auth or PIXDEX_REQUIRE_API_KEYS=false) pixdex serves "
            f"only on 127.0.0.1, not {args.host}; create a key with `pixdex keys create` "
            "to serve on other addresses", field="host",
        )
    # pixdex's own log lines (the access log) only: the root logger would also print
    # every line the embedded PostgreSQL package logs.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    own = logging.getLogger("pixdex")
    own.addHandler(handler)
    own.setLevel(logging.INFO)
    own.propagate = False
    warm_up(settings)
    resumed = resume_waiting(settings)
    if resumed:
        print(f"indexing {resumed} images added before the last stop", file=sys.stderr)
    return settings


def _banner(url: str, settings: Settings) -> str:
    access = (
        f"no API keys (every request acts in workspace {settings.workspace!r})"
        if not settings.require_api_keys
        else "API keys required (pixdex keys create --workspace NAME)"
    )
    return (
        f"pixdex web app: open {url}/ in a browser\n"
        f"pixdex API on {url}  (Swagger UI {url}/docs, OpenAPI {url}/openapi.json); {access}"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pixdex.server import serve

    settings = _prepare(args, settings)
    serve(settings, args.host, args.port, access_log=not args.quiet,
          on_ready=lambda url: print(_banner(url, settings), flush=True))
    return EXIT_OK


def curl_examples(url: str, key: str | None, dataset: str, image_id: str, image_path: str) -> str:
    auth = ' -H "Authorization: Bearer $PIXDEX_KEY"' if key else ""
    post = f"curl -s -X POST {url}/v1/search{auth} -H 'Content-Type: application/json' -d"
    lines = [f"export PIXDEX_KEY={key}"] if key else []
    lines += [
        f"curl -s {url}/v1/datasets{auth}",
        f"{post} '{{\"in_dataset\": \"{dataset}\", \"like_image\": \"{image_id}\", \"limit\": 5}}'",
        f"{post} \"{{\\\"in_dataset\\\": \\\"{dataset}\\\", \\\"image\\\": "
        f"\\\"$(base64 -w0 {image_path})\\\", \\\"limit\\\": 5}}\"",
        f"{post} '{{\"objects\": [\"tabby cat\", \"espresso\"], \"fields\": [\"name\", "
        f"\"auto_tags\"]}}'",
        f"{post} '{{\"attributes\": [\"dark\", \"blurry\"], \"group\": 2}}'",
    ]
    return "\n".join(lines)


def serve_after_demo(args: argparse.Namespace, settings: Settings) -> int:
    """``pixdex demo --serve``: after the demo, serve its dataset and show how to call it."""
    from pixdex.app.demo import DATASET
    from pixdex.app.service.keys import create_key
    from pixdex.app.service.search import run_search
    from pixdex.app.service.search_schemas import SearchRequest
    from pixdex.server import serve

    settings = _prepare(args, settings)
    page = run_search(settings, settings.workspace,
                      SearchRequest(in_dataset=DATASET, objects="tabby cat", limit=1))
    image_id = str(page.results[0].id) if page.results else "IMAGE_ID"
    key = None if args.no_auth else create_key(settings, settings.workspace, name="demo").key
    query = settings.home / "samples" / "edited" / "chelsea_flipped.jpg"

    def ready(url: str) -> None:
        print("\n" + _banner(url, settings))
        print("Try it" + (" (the key is shown only now)" if key else "") + ":\n")
        print(curl_examples(url, key, DATASET, image_id, str(query)), flush=True)

    serve(settings, args.host, args.port, access_log=not args.quiet, on_ready=ready)
    return EXIT_OK
