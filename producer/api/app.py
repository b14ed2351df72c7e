"""The app: FastAPI, built from Settings and ApiOptions, with its routes, errors and limits.

One Client (producer/client.py) and one event hub per app, in the ApiContext every route is
handed (context.py). Middleware, outermost first: CORS (only with origins configured), then
the body cap, then FastAPI's routing with the error handlers (errors.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from config.settings import Settings
from config.store import redis_client
from config.store.client import async_redis_client
from producer.api import errors
from producer.api.context import ApiContext
from producer.api.events import EventHub
from producer.api.limits import BodyLimit
from producer.api.options import ApiOptions
from producer.api.routes import ROUTERS, history, sdapi
from producer.client import Client
from producer.web import install as install_web

DESCRIPTION = """Nightshift's render queue over HTTP: submit jobs and batches, follow them live
(Server-Sent Events), fetch their images, watch and pause the queue.

Authentication: `Authorization: Bearer <token>` (or HTTP Basic with the token as the password).
Tokens come from `nightshift token create NAME --scope read|submit|admin`. Errors are
`{"error": {"code", "field", "message"}}`."""


def create_app(
    settings: Settings, options: ApiOptions | None = None, client: Client | None = None
) -> FastAPI:
    options = options or ApiOptions()
    client = client or Client(settings)
    # Its own Redis client: the hub holds one connection in a blocking read.
    hub = EventHub(redis_client(settings))
    ctx = ApiContext(settings, client, hub, options)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        aredis = ctx.aredis = async_redis_client(settings)  # on the serving loop (context.py)
        try:
            yield
        finally:
            ctx.aredis = None
            await aredis.aclose()
            hub.close()

    app = FastAPI(
        title="Nightshift",
        version=_version(),
        description=DESCRIPTION,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.nightshift = ctx
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(sdapi.router)  # AUTOMATIC1111's /sdapi/v1, beside Nightshift's /v1
    app.include_router(history.router)  # /v1/history; its lifespan keeps the index in step
    install_web(app)  # the web app at / (producer/web/): pages whose scripts call /v1
    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(options.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    return app


def _version() -> str:
    try:
        return metadata.version("nightshift")
    except metadata.PackageNotFoundError:
        return "0"
