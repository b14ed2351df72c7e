"""Browser sessions of the web app (producer/web/): a signed-in browser is a token, kept here.

A session is made when someone signs in with an API token (POST /login); the browser holds a
random session id in an HttpOnly cookie, and Redis holds, under the sha256 of that id
(keys.web_session_key), the sha256 of the token it stands for, the token's name and scope, and
the session's CSRF value. Neither the session id nor the token is stored: whoever reads Redis
cannot sign in as anyone. The token is looked up again on every request (auth.py), so revoking
it ends its sessions at once; its scope then is the one that counts.

A session lives SESSION_TTL_S after its last use (each lookup slides it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

import redis

from config import keys as names
from config.store import tokens

SESSION_TTL_S = 12 * 3600
SESSION_BYTES = 32


@dataclass(frozen=True)
class Session:
    """What a session id stands for: its token (by digest), that token's name, and the CSRF
    value every state-changing request of the session must carry."""

    token_digest: str
    name: str
    scope: str
    csrf: str
    created_at: float


def _key(session_id: str) -> str:
    return names.web_session_key(hashlib.sha256(session_id.encode("utf-8")).hexdigest())


def new_secret() -> str:
    """A random value for a session id or a CSRF value: 32 bytes, URL-safe."""
    return secrets.token_urlsafe(SESSION_BYTES)


def create(
    client: redis.Redis, token: str, info: tokens.TokenInfo, ttl_s: int = SESSION_TTL_S
) -> tuple[str, Session]:
    """A new session for a token already checked (tokens.lookup); returns its id, once."""
    session_id = new_secret()
    session = Session(tokens.digest(token), info.name, info.scope, new_secret(), time.time())
    client.set(_key(session_id), json.dumps(vars(session)), ex=ttl_s)
    return session_id, session


def lookup(client: redis.Redis, session_id: str, ttl_s: int = SESSION_TTL_S) -> Session | None:
    """The session, its life slid on; None when unknown, expired, or its token was revoked
    (then the session is deleted too)."""
    key = _key(session_id)
    with client.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.expire(key, ttl_s)
        raw, _ = pipe.execute()
    if raw is None:
        return None
    try:
        session = Session(**json.loads(raw))
    except (ValueError, TypeError):
        return None  # not ours (written by hand): grants nothing
    token = token_info(client, session.token_digest)
    if token is None:
        client.delete(key)
        return None
    # The token's scope now, not the one it had at sign-in.
    return Session(session.token_digest, token.name, token.scope, session.csrf, session.created_at)


def token_info(client: redis.Redis, token_digest: str) -> tokens.TokenInfo | None:
    """The token a digest stands for, read as tokens.lookup reads it; None if revoked."""
    raw = client.hget(names.API_TOKENS, token_digest)
    # tokens' own parser: an entry it would refuse (written by hand) grants nothing here too.
    return tokens._info(raw) if raw is not None else None


def delete(client: redis.Redis, session_id: str) -> None:
    """Sign out: the session id is refused from now on."""
    client.delete(_key(session_id))


def csrf_matches(given: str | None, expected: str) -> bool:
    """Whether a request's CSRF value is the session's, compared in constant time."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
