"""What routes get besides the request: the process's settings and the caller.

``pixdex serve`` answers each request inside :func:`serving` with its own settings; in
Lambda nothing sets them and they come from the environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated

from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.event_handler.depends import Depends

from pixdex.app.service.keys import Principal
from pixdex.config import Settings

# The settings of the server answering the current request: one process may run several
# servers (tests run a keyed and a keyless one side by side), each with its own.
_serving: ContextVar[Settings | None] = ContextVar("pixdex_serving_settings", default=None)


@contextmanager
def serving(settings: Settings) -> Iterator[None]:
    """Answer the requests handled inside this block with ``settings``."""
    token = _serving.set(settings)
    try:
        yield
    finally:
        _serving.reset(token)


def settings() -> Settings:
    current = _serving.get()
    if current is not None:
        return current
    # In Lambda: the database URL comes from its secret (cached).
    from pixdex.db_secret import lambda_settings

    return lambda_settings()


def _principal(request: Request) -> Principal:
    principal = request.context.get("principal")
    assert isinstance(principal, Principal), "the guard runs before every private route"
    return principal


Caller = Annotated[Principal, Depends(_principal)]
