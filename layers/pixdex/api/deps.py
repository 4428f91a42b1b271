"""What routes get besides the request: the process's settings and the caller.

``configure`` is called once by whatever hosts the app (``pixdex serve``, tests); in
Lambda nothing calls it and the settings come from the environment.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Request
from aws_lambda_powertools.event_handler.depends import Depends

from pixdex.config import Settings
from pixdex.service.keys import Principal

_configured: list[Settings] = []


def configure(settings: Settings) -> None:
    _configured[:] = [settings]


def settings() -> Settings:
    if _configured:
        return _configured[0]
    # In Lambda nothing calls configure(): the database URL comes from its secret (cached).
    from pixdex.db_secret import lambda_settings

    return lambda_settings()


def _principal(request: Request) -> Principal:
    principal = request.context.get("principal")
    assert isinstance(principal, Principal), "the guard runs before every private route"
    return principal


Caller = Annotated[Principal, Depends(_principal)]
