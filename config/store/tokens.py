"""API tokens: who may use the HTTP API (`nightshift api`), and for what.

A token is shown once, when it is made (`nightshift token create`), and never stored: Redis
holds the sha256 of it, with its name, scope and date (keys.API_TOKENS), and when it was last
used (keys.API_TOKENS_USED). Whoever can read Redis can read those, and cannot use them: a
token is 32 random bytes, so its hash cannot be reversed or guessed, and no salt is needed.

Scopes, each including the ones before it in SCOPES: `read` (every GET), `submit` (read, and
submit or cancel jobs and batches), `admin` (everything: pause, resume, retries, tokens).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass

import redis
import redis.asyncio

from config import keys as names
from config.errors import InvalidInput

SCOPES = ("read", "submit", "admin")
# A prefix that says what the string is: secret scanners and people both recognise it.
PREFIX = "nst_"
TOKEN_BYTES = 32
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
WATCH_ATTEMPTS = 5


class TokenExists(InvalidInput):
    """Raised when a token of that name exists already (revoke it first)."""


class UnknownToken(InvalidInput):
    """Raised when no token has that name."""


@dataclass(frozen=True)
class TokenInfo:
    """What is kept of a token: never the token itself."""

    name: str
    scope: str
    created_at: float
    last_used_at: float | None = None


def digest(token: str) -> str:
    """The sha256 of a token, as stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def allows(granted: str, needed: str) -> bool:
    """Whether a token of scope `granted` may do what needs `needed`."""
    return SCOPES.index(granted) >= SCOPES.index(needed)


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            "name", name, "must be 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
        )
    return name


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise InvalidInput("scope", scope, f"must be one of {', '.join(SCOPES)}")
    return scope


def create(client: redis.Redis, name: str, scope: str, now: float | None = None) -> str:
    """Make a token; returns it, the one time it exists outside the caller's hands."""
    check_name(name)
    check_scope(scope)
    token = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    info = {"name": name, "scope": scope, "created_at": time.time() if now is None else now}
    for _attempt in range(WATCH_ATTEMPTS):
        with client.pipeline() as pipe:
            # WATCH: two creates of one name racing make one token, not two under one name.
            pipe.watch(names.API_TOKENS)
            if name in {i.name for i in _infos(pipe.hgetall(names.API_TOKENS)).values()}:
                raise TokenExists("name", name, "a token of this name exists; revoke it first")
            pipe.multi()
            pipe.hset(names.API_TOKENS, digest(token), json.dumps(info))
            try:
                pipe.execute()
            except redis.WatchError:  # another create or revoke came first: look again
                continue
        return token
    raise redis.WatchError(f"tokens changed {WATCH_ATTEMPTS} times while {name!r} was made")


def lookup(client: redis.Redis, token: str) -> TokenInfo | None:
    """The token's name and scope; None when it is not (or no longer) a token."""
    raw = client.hget(names.API_TOKENS, digest(token))
    return _info(raw) if raw is not None else None


def note_used(client: redis.Redis, token: str, now: float | None = None) -> None:
    client.hset(names.API_TOKENS_USED, digest(token), time.time() if now is None else now)


async def lookup_async(client: redis.asyncio.Redis, token: str) -> TokenInfo | None:
    """lookup, on an asyncio client (the API's event loop)."""
    raw = await client.hget(names.API_TOKENS, digest(token))
    return _info(raw) if raw is not None else None


async def note_used_async(client: redis.asyncio.Redis, token: str) -> None:
    await client.hset(names.API_TOKENS_USED, digest(token), time.time())


def count(client: redis.Redis) -> int:
    return int(client.hlen(names.API_TOKENS))


def list_tokens(client: redis.Redis) -> list[TokenInfo]:
    """Every token's name, scope, creation and last use, by name."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(names.API_TOKENS)
        pipe.hgetall(names.API_TOKENS_USED)
        stored, used = pipe.execute()
    found = []
    for key, info in _infos(stored).items():
        last = used.get(key)
        found.append(
            TokenInfo(info.name, info.scope, info.created_at, float(last) if last else None)
        )
    return sorted(found, key=lambda i: i.name)


def revoke(client: redis.Redis, name: str) -> None:
    """Remove the token of that name: from the next request on, it is refused."""
    stored = _infos(client.hgetall(names.API_TOKENS))
    keys = [key for key, info in stored.items() if info.name == name]
    if not keys:
        raise UnknownToken("name", name, "no token has this name")
    with client.pipeline() as pipe:
        pipe.hdel(names.API_TOKENS, *keys)
        pipe.hdel(names.API_TOKENS_USED, *keys)
        pipe.execute()


def _infos(stored: dict) -> dict[str, TokenInfo]:
    """digest -> what it stands for, leaving out entries that are not ours (written by hand)."""
    found = {}
    for key, raw in stored.items():
        info = _info(raw)
        if info is not None:
            found[key.decode() if isinstance(key, bytes) else str(key)] = info
    return found


def _info(raw: str | bytes) -> TokenInfo | None:
    """A stored entry; None for one that is not ours, which therefore grants nothing."""
    try:
        data = json.loads(raw)
        info = TokenInfo(str(data["name"]), str(data["scope"]), float(data["created_at"]))
    except (ValueError, KeyError, TypeError):
        return None
    return info if info.scope in SCOPES else None
