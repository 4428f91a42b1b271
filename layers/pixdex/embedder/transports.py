"""How an invocation request reaches the model: in-process, over HTTP, or via SageMaker.

All three carry the same :class:`~.protocol.InvocationRequest` and return the same
:class:`~.protocol.InvocationResponse`; errors come back as the same typed
:class:`~pixdex.errors.PixdexError` subclasses. Each transport is created once per process
(:func:`transport_for` caches them), so the boto3 client and the in-process engine are
shared by every caller.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from functools import cache
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from pixdex.config import Settings
from pixdex.errors import InvalidInputError

from .errors import EmbedderResponseError, EmbedderUnavailableError, error_from_response
from .protocol import InvocationRequest, InvocationResponse

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime.client import SageMakerRuntimeClient

__all__ = [
    "SAGEMAKER_MAX_IMAGES",
    "SAGEMAKER_MAX_PAYLOAD",
    "HttpTransport",
    "SageMakerTransport",
    "Transport",
    "transport_for",
]

# InvokeEndpoint refuses bodies over 6 MB (a hard SageMaker limit), answers included:
# 64 images of 1280-d embeddings and 1000 class scores stay well below it.
SAGEMAKER_MAX_PAYLOAD = 6 * 1024 * 1024
SAGEMAKER_MAX_IMAGES = 64
_HTTP_TIMEOUT_S = 300.0


class Transport(Protocol):
    where: str
    max_request_bytes: int
    max_images: int | None  # beyond the server's own limit (None: no extra limit)

    def invoke(self, request: InvocationRequest) -> InvocationResponse: ...


def _parse(body: bytes, where: str) -> InvocationResponse:
    try:
        return InvocationResponse.model_validate_json(body)
    except ValidationError as exc:
        raise EmbedderResponseError(
            f"embedder at {where} sent a response this client cannot read: {exc.errors()[0]}"
        ) from exc


def _encode(request: InvocationRequest) -> bytes:
    return request.model_dump_json(exclude_none=True).encode("utf-8")


class HttpTransport:
    """The pixdex inference server (``pixdex embedder serve``) at ``url``."""

    max_images: int | None = None

    def __init__(self, url: str, max_request_bytes: int, *, timeout: float = _HTTP_TIMEOUT_S):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError(
                f"PIXDEX_EMBEDDER_URL must be an http(s) URL such as http://127.0.0.1:8080, "
                f"got {url!r}",
                field="embedder_url",
            )
        base = url.rstrip("/").removesuffix("/invocations")
        self.where = base
        self._endpoint = base + "/invocations"
        self.max_request_bytes = max_request_bytes
        self.timeout = timeout

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        http_request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            self._endpoint,
            data=_encode(request),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as answer:  # noqa: S310
                body = answer.read()
        except urllib.error.HTTPError as exc:
            raise error_from_response(exc.code, exc.read(), self.where) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EmbedderUnavailableError(
                f"cannot reach the embedder at {self.where}: {reason}. Is `pixdex embedder "
                "serve` running there (PIXDEX_EMBEDDER_URL)?"
            ) from exc
        return _parse(body, self.where)


class SageMakerTransport:
    """A SageMaker real-time endpoint running the pixdex container (``invoke_endpoint``)."""

    max_images: int | None = SAGEMAKER_MAX_IMAGES

    def __init__(
        self,
        endpoint: str,
        region: str | None,
        *,
        client: SageMakerRuntimeClient | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self.where = f"SageMaker endpoint {endpoint!r}"
        # The JSON envelope around the images takes a little room too.
        self.max_request_bytes = SAGEMAKER_MAX_PAYLOAD - 64 * 1024
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> SageMakerRuntimeClient:
        with self._lock:
            if self._client is None:
                import boto3  # deferred: costs ~0.3 s, only the sagemaker mode needs it

                self._client = boto3.client("sagemaker-runtime", region_name=self.region)
            return self._client

    def invoke(self, request: InvocationRequest) -> InvocationResponse:
        try:
            answer = self.client.invoke_endpoint(
                EndpointName=self.endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=_encode(request),
            )
            body = answer["Body"].read()
        except ClientError as exc:
            raise self._error(exc) from exc
        except BotoCoreError as exc:
            raise EmbedderUnavailableError(f"cannot reach {self.where}: {exc}") from exc
        return _parse(body, self.where)

    def _error(self, exc: ClientError) -> Exception:
        response = exc.response
        code = response.get("Error", {}).get("Code", "")
        if code == "ModelError":
            # The container answered non-200: SageMaker relays its status and body.
            raw = response.get("OriginalStatusCode")
            status = int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else 500
            original = str(response.get("OriginalMessage", ""))
            return error_from_response(status, original.encode("utf-8"), self.where)
        message = response.get("Error", {}).get("Message", str(exc))
        return EmbedderUnavailableError(f"{self.where} failed ({code}): {message}")


@cache
def _http(url: str, max_request_bytes: int) -> HttpTransport:
    return HttpTransport(url, max_request_bytes)


@cache
def _sagemaker(endpoint: str, region: str | None) -> SageMakerTransport:
    return SageMakerTransport(endpoint, region)


def transport_for(settings: Settings) -> Transport:
    """The shared transport for ``settings.embedder`` (``InvalidInputError`` if incomplete)."""
    if settings.embedder == "http":
        if not settings.embedder_url:
            raise InvalidInputError(
                "PIXDEX_EMBEDDER=http needs PIXDEX_EMBEDDER_URL (e.g. http://127.0.0.1:8080, "
                "where `pixdex embedder serve` listens)",
                field="embedder_url",
            )
        return _http(settings.embedder_url, settings.max_request_bytes)
    if settings.embedder == "sagemaker":
        if not settings.sagemaker_endpoint:
            raise InvalidInputError(
                "PIXDEX_EMBEDDER=sagemaker needs PIXDEX_SAGEMAKER_ENDPOINT (the endpoint name)",
                field="sagemaker_endpoint",
            )
        return _sagemaker(settings.sagemaker_endpoint, settings.aws_region)
    raise InvalidInputError(
        "PIXDEX_EMBEDDER=local runs the model in this process: there is no endpoint to "
        "call (pixdex.serving.engine.LocalTransport calls an engine directly)",
        field="embedder",
    )

