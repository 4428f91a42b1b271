"""``GET /v1/me``: who the caller's key acts as."""

from __future__ import annotations

from pixdex.api.deps import Caller
from pixdex.api.openapi import new_router, responses
from pixdex.app.service.schemas import Me

router = new_router()


@router.get("/v1/me", tags=["meta"], summary="The caller's workspace and scope",
            responses=responses("Who the key acts as"))
def me(caller: Caller) -> Me:
    return Me(workspace=caller.workspace, scope=caller.scope,
              auth="none" if caller.key_id is None else "key")
