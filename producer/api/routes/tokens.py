"""/v1/tokens (admin): list, create and revoke API tokens, as `nightshift token` does
(config/store/tokens.py). A new token is in the answer to its creation, and nowhere else
ever again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from config.store import reachable
from config.store import tokens as store
from producer.api.auth import ADMIN
from producer.api.context import Ctx

router = APIRouter(prefix="/v1/tokens", tags=["tokens"], dependencies=[ADMIN])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    scope: str


@router.get("")
def list_all(ctx: Ctx) -> dict[str, Any]:
    """Names, scopes, when made and last used; never a token."""
    with reachable():
        found = store.list_tokens(ctx.client.store.redis)
    return {"tokens": [vars(info) for info in found]}


@router.post("", status_code=201)
def create(body: TokenRequest, ctx: Ctx) -> dict[str, Any]:
    """Make a token: the answer holds it, once."""
    with reachable():
        token = store.create(ctx.client.store.redis, body.name, body.scope)
    return {"name": body.name, "scope": body.scope, "token": token}


@router.delete("/{name}", status_code=204)
def revoke(name: str, ctx: Ctx) -> Response:
    with reachable():
        store.revoke(ctx.client.store.redis, name)
    return Response(status_code=204)
