"""A powertools HTTP API resolver whose per-request state is per thread.

powertools keeps the current event as a class attribute (``BaseRouter.current_event``)
and the routing context as an instance attribute, which is right for Lambda (one request
per process at a time) but mixes requests up when a threaded local server resolves two
at once. Here both live in thread-local storage, so ``pixdex serve`` runs the very same
app concurrently; in Lambda nothing changes.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2


class ThreadSafeHttpResolver(APIGatewayHttpResolver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._local = threading.local()
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEventV2:
        event: APIGatewayProxyEventV2 = self._local.event
        return event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEventV2) -> None:
        self._local.event = value

    @property
    def context(self) -> dict[str, Any]:
        state: dict[str, Any] | None = getattr(self._local, "context", None)
        if state is None:
            state = self._local.context = {}
        return state

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._local.context = value

    def _to_proxy_event(self, event: dict[str, Any]) -> APIGatewayProxyEventV2:
        # resolve() stores the event on the BaseRouter class; keep this thread's own copy.
        proxy = super()._to_proxy_event(event)
        assert isinstance(proxy, APIGatewayProxyEventV2)
        self._local.event = proxy
        return proxy
