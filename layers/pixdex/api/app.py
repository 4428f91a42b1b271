"""The API app: the same object answers API Gateway (``functions/api/handler.py``) and
``pixdex serve`` (which turns real HTTP requests into API Gateway v2 events).

``GET /docs`` is the Swagger UI, ``GET /openapi.json`` the OpenAPI document,
``GET /v1/health`` a liveness probe, ``GET /`` the web app; all are public.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    HTTPBearer,
)

from pixdex import __version__
from pixdex.api import (
    errors,
    guard,
    routes_anchors,
    routes_curation,
    routes_datasets,
    routes_images,
    routes_meta,
    routes_search,
    routes_uploads,
    routes_vectors,
    routes_web,
)
from pixdex.api.dialects import clarifai, roboflow, visual_layer, weaviate
from pixdex.api.resolver import ThreadSafeHttpResolver

TITLE = "pixdex"
DESCRIPTION = (
    "Self-hostable image search. Authenticate with `Authorization: Bearer KEY` (or "
    "`?api_key=KEY`); keys come from `pixdex keys create --workspace NAME`. Every error "
    'answers `{"error": {"code", "message", "field"}}`.'
)
SECURITY_SCHEMES = {
    "bearer": HTTPBearer(description="Authorization: Bearer KEY"),
    "api_key": APIKey(name="api_key", in_=APIKeyIn.query, description="?api_key=KEY"),
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"api_key": []}]


def create_app() -> ThreadSafeHttpResolver:
    app = ThreadSafeHttpResolver(enable_validation=True)
    for module in (
        routes_datasets, routes_uploads, routes_images, routes_vectors, routes_search,
        routes_anchors, routes_meta, routes_web, routes_curation, clarifai, visual_layer,
        weaviate,
        roboflow,  # last: its /{workspace}/{project}/search pattern is the widest
    ):
        app.include_router(module.router)
    openapi: dict[str, Any] = {
        "title": TITLE, "version": __version__, "description": DESCRIPTION,
        "security_schemes": SECURITY_SCHEMES, "security": SECURITY,
    }
    app.enable_swagger(path="/docs", **openapi)

    @cache
    def document() -> str:
        return app.get_openapi_json_schema(**openapi)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response[str]:
        return Response(status_code=200, content_type="application/json", body=document())

    @app.get("/v1/health", tags=["meta"], summary="Liveness probe (no key needed)", security=[])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    errors.register(app)
    guard.install(app)
    return app


app = create_app()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (also what the local server calls)."""
    return app.resolve(event, context)
