"""What every route is handed: the settings, the one Client, the event hub, the options.

Routes take it as a dependency (`ctx: Ctx`), never by importing the app: app.py builds one
ApiContext per app and keeps it on app.state, and this module is the one place that reads it
back, so a test can build an app of its own with other settings.

`aredis`, an asyncio Redis client, lets the event loop itself make the one read every request
needs (its token, auth.py): a hop to a worker thread and back for it cost more than the read.
An asyncio client belongs to one loop, so the app's lifespan makes it on the serving loop and
closes it at the end (app.py); outside a lifespan it is None and the token is read by the
Client's own Redis, in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import redis.asyncio
from fastapi import Depends, Request

from config.settings import Settings
from producer.api.events import EventHub
from producer.api.options import ApiOptions
from producer.client import Client


@dataclass
class ApiContext:
    settings: Settings
    client: Client
    hub: EventHub
    options: ApiOptions
    # Token digest -> when its last use was written (time.monotonic): once a minute is enough.
    noted_use: dict[str, float] = field(default_factory=dict)
    aredis: redis.asyncio.Redis | None = None


async def get_context(request: Request) -> ApiContext:
    # async, though it awaits nothing: FastAPI runs a plain def in a worker thread.
    ctx = request.app.state.nightshift
    assert isinstance(ctx, ApiContext)
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]
