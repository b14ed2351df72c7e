"""Who is asking, and may they: bearer tokens (config/store/tokens.py) and their scopes.

- `Authorization: Bearer <token>`, or HTTP Basic with the token as the password (AUTOMATIC1111's
  clients send Basic); the Basic user name is not read.
- The local default: while no token exists at all and the server listens on loopback only, a
  request without credentials is let in with every scope (`nightshift api` says so when it
  starts). Not a request that came through a proxy (Forwarded, X-Forwarded-For, X-Real-IP: its
  client is elsewhere), nor one whose Host is not a loopback name (DNS rebinding: a web page's
  own host name pointed at 127.0.0.1).
- A web app session (producer/web/): with no Authorization header, the `ns_session` cookie
  (config/store/sessions.py) stands for the token it was signed in with, looked up again on
  every request (revoked: the session is dead). A write (anything but GET, HEAD, OPTIONS) with
  the cookie must carry the session's CSRF value in X-CSRF-Token, else 403: a cookie is sent
  by the browser whoever made the page, a header only by the app's own script.
- A browser's cross-origin write (an Origin header not on the CORS list, on anything but GET,
  HEAD or OPTIONS) is refused whatever it carries: a page elsewhere must not drive the queue
  with a login the browser remembers, or with the local default. The server's own origin
  (the web app's pages) is not cross-origin.

Each route names the scope it needs with one of READ, SUBMIT, ADMIN: an async dependency, so a
token is read on the event loop itself (ApiContext.aredis, context.py), on every request; a
session or the local default (the browser's and this machine's cases) is read in a worker
thread, with the Client's Redis.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from config.store import reachable, sessions
from config.store import tokens as store
from producer.api.context import ApiContext, Ctx
from producer.api.errors import FORBIDDEN, UNAUTHORIZED, ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="nightshift"'}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
# A token's last use is written at most this often: one write per request would double the
# Redis round trips of every call for a date nobody needs to the second.
NOTE_USE_EVERY_S = 60.0
SESSION_COOKIE = "ns_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a token's name and scope."""

    name: str
    scope: str


LOCAL = Principal("local default (no token exists)", "admin")


def credentials(header: str) -> str | None:
    """The token in an Authorization header (Bearer, or Basic's password); None if none."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, colon, password = decoded.partition(":")
        return password if colon and password else None
    return None


async def authenticate(request: Request, ctx: ApiContext) -> Principal:
    check_origin(request, ctx)
    header = request.headers.get("authorization")
    if header is None:
        return await run_in_threadpool(without_token, request, ctx)
    token = credentials(header)
    with reachable():
        info = await lookup(ctx, token) if token else None
        if token is None or info is None:
            raise ApiError(401, UNAUTHORIZED, "unknown or revoked token", headers=CHALLENGE)
        await note_use(ctx, token)
    return Principal(info.name, info.scope)


def without_token(request: Request, ctx: ApiContext) -> Principal:
    """A request with no Authorization header: a web app session, else the local default."""
    client = ctx.client.store.redis
    with reachable():
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            return from_session(request, client, session_id)
        if local_default(request, ctx) and store.count(client) == 0:
            return LOCAL
    raise ApiError(
        401, UNAUTHORIZED, "a token is needed (Authorization: Bearer ...)", headers=CHALLENGE
    )


async def lookup(ctx: ApiContext, token: str) -> store.TokenInfo | None:
    if ctx.aredis is None:  # outside the app's lifespan (context.py)
        return await run_in_threadpool(store.lookup, ctx.client.store.redis, token)
    return await store.lookup_async(ctx.aredis, token)


def from_session(request: Request, client: redis.Redis, session_id: str) -> Principal:
    """The Principal of a web app session; its CSRF value checked on a write."""
    found = sessions.lookup(client, session_id)
    if found is None:
        raise ApiError(401, UNAUTHORIZED, "the session has ended; sign in again", headers=CHALLENGE)
    given = request.headers.get(CSRF_HEADER)
    if request.method not in SAFE_METHODS and not sessions.csrf_matches(given, found.csrf):
        message = f"a write from a web session needs its CSRF value in {CSRF_HEADER}"
        raise ApiError(403, FORBIDDEN, message, CSRF_HEADER)
    return Principal(found.name, found.scope)


def local_default(request: Request, ctx: ApiContext) -> bool:
    """Whether a request without a token may be the local default (if no token exists)."""
    if not ctx.options.loopback:
        return False
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    return request.url.hostname in LOOPBACK_NAMES


def check_origin(request: Request, ctx: ApiContext) -> None:
    origin = request.headers.get("origin")
    if request.method in SAFE_METHODS or origin is None:
        return
    if origin not in ctx.options.cors_origins and origin != own_origin(request):
        message = f"a cross-origin request from {origin[:100]} is refused (not a CORS origin)"
        raise ApiError(403, FORBIDDEN, message, "Origin")


def own_origin(request: Request) -> str:
    """This server's origin as the browser saw it (the web app's own pages write from it).
    A rebound host name matches too, and carries neither the session cookie (set for the
    real host) nor the local default (a loopback Host only)."""
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


async def note_use(ctx: ApiContext, token: str) -> None:
    key, now = store.digest(token), time.monotonic()
    last = ctx.noted_use.get(key)
    if last is None or now - last >= NOTE_USE_EVERY_S:
        ctx.noted_use[key] = now
        if ctx.aredis is None:
            await run_in_threadpool(store.note_used, ctx.client.store.redis, token)
        else:
            await store.note_used_async(ctx.aredis, token)


def require(scope: str) -> Callable[[Request, ApiContext], Awaitable[Principal]]:
    """A dependency that lets a request through only with a token of `scope` or above."""
    store.check_scope(scope)

    async def dependency(request: Request, ctx: Ctx) -> Principal:
        principal = await authenticate(request, ctx)
        if not store.allows(principal.scope, scope):
            message = f"needs a token of scope {scope}; {principal.name} has {principal.scope}"
            raise ApiError(403, FORBIDDEN, message)
        return principal

    return dependency


READ = Depends(require("read"))
SUBMIT = Depends(require("submit"))
ADMIN = Depends(require("admin"))
