"""Malformed envelopes on a queue are dropped with a log line instead of stopping the worker.

Anyone who can reach Redis can LPUSH anything onto a queue. kombu's Redis transport pops the
item and decodes the envelope inside the consumer's event loop without a guard, so one item
that is not a JSON object (or lacks `properties`) ends the worker with "Unrecoverable error".
The item has already been popped when that happens and nothing was added to `unacked`, so
dropping it loses nothing but the garbage. Well-formed envelopes with a bad body (pickle,
broken JSON, an invalid job) never reach this: Celery refuses those itself and goes on.
Checked against kombu 5.7's `Channel._brpop_read`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from kombu.transport import redis as redis_transport

logger = logging.getLogger(__name__)

MALFORMED = (ValueError, TypeError, KeyError, AttributeError)


def _tolerant(read: Any) -> Any:
    @functools.wraps(read)
    def brpop_read(self: Any, **options: Any) -> Any:
        try:
            return read(self, **options)
        except MALFORMED as exc:
            logger.error(
                "dropped a malformed message from the queue: %s: %s", type(exc).__name__, exc
            )
            return True

    brpop_read.nightshift_tolerant = True  # type: ignore[attr-defined]
    return brpop_read


def install() -> None:
    channel = redis_transport.Channel
    if not getattr(channel._brpop_read, "nightshift_tolerant", False):
        channel._brpop_read = _tolerant(channel._brpop_read)  # type: ignore[method-assign]


install()
