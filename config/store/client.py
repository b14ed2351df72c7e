"""The one Redis client factory: every project module gets its clients here.

Why one place: a client built by hand has no timeouts, so a Redis that is down hangs the
caller (a CLI command, the gate in the consumer's loop) instead of failing fast, and
returns bytes where the rest of the code expects str.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from config.errors import BrokerUnavailable
from config.settings import Settings

HEALTH_CHECK_INTERVAL_S = 30
MIN_SOCKET_TIMEOUT_S = 10.0


def redis_client(settings: Settings, patient: bool = False, binary: bool = False) -> redis.Redis:
    """A client that fails fast when Redis is down instead of hanging the caller.

    patient (the worker's own writes): retry connection errors with backoff for about
    worker_redis_patience_s, so a Redis restart in the middle of a render costs a pause,
    not the finished image.
    binary: replies stay bytes (the input store's PNGs); otherwise they are decoded as UTF-8.
    """
    options: dict[str, object] = {}
    if patient:
        backoff = ExponentialBackoff(cap=2.0, base=0.1)
        retries = _retries_within(settings.worker_redis_patience_s, backoff)
        options["retry"] = Retry(backoff, retries)
    return redis.Redis.from_url(
        settings.redis_url, decode_responses=not binary, **_fail_fast(settings), **options
    )


def async_redis_client(settings: Settings) -> redis.asyncio.Redis:
    """redis_client's asyncio twin, as quick to fail, for an event loop's own reads (the API
    checks a token on its loop, without a hop to a worker thread). Its connections belong to
    the loop that first uses them: make it there, and close it (aclose) before that loop ends."""
    return redis.asyncio.Redis.from_url(
        settings.redis_url, decode_responses=True, **_fail_fast(settings)
    )


def _fail_fast(settings: Settings) -> dict[str, Any]:
    return {
        "socket_connect_timeout": settings.broker_connect_timeout_s,
        "socket_timeout": max(settings.broker_connect_timeout_s, MIN_SOCKET_TIMEOUT_S),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


def _retries_within(seconds: float, backoff: ExponentialBackoff) -> int:
    waited, retries = 0.0, 0
    while waited < seconds:
        retries += 1
        waited += backoff.compute(retries)
    return retries


@contextmanager
def reachable() -> Iterator[None]:
    """Turn Redis connection errors and timeouts into BrokerUnavailable (CLI exit 3)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"Redis is not reachable: {exc}") from None


# What a broker Redis needs so that queued jobs survive: read by the worker at start-up (a
# warning) and by `nightshift doctor` (a FAIL line), from this one table.
DURABILITY = {
    "appendonly": (
        "yes",
        "appendonly is off: a Redis crash loses queued jobs",
        "appendonly yes in redis.conf (or redis-cli CONFIG SET appendonly yes; CONFIG REWRITE)",
    ),
    "maxmemory-policy": (
        "noeviction",
        "maxmemory-policy is {value}: under memory pressure it evicts jobs",
        "maxmemory-policy noeviction (redis-cli CONFIG SET maxmemory-policy noeviction)",
    ),
}


def durability_config(client: redis.Redis) -> dict[str, str]:
    """The settings in DURABILITY as the server has them; raises redis.ResponseError where
    CONFIG is refused (managed Redis often does)."""
    found: dict[str, str] = {}
    for name in DURABILITY:
        found |= {str(k): str(v) for k, v in client.config_get(name).items()}
    return found


def durability_problems(config: dict[str, str]) -> dict[str, str]:
    """Setting name -> what goes wrong, for each setting that is not as DURABILITY needs."""
    return {
        name: harm.format(value=config.get(name))
        for name, (wanted, harm, _) in DURABILITY.items()
        if config.get(name) != wanted
    }
