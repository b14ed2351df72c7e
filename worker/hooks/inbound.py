"""Parent: every message is checked at the door; one the worker may not run is acknowledged,
kept with its reason, and the worker takes the next job.

Anyone who can reach Redis can LPUSH anything onto a queue. kombu's Redis transport pops
the item and decodes it (`Channel._brpop_read`: loads, then `connection._deliver`); the
callback `basic_consume` installed builds its Message and appends it to the QoS (the
`unacked` hash and the prefetch count) before Celery's `on_task_received` reads it. A
message Celery then failed on (a body missing) stayed there: with prefetch 1
`can_consume()` stayed false and the worker never consumed again, and, holding no lease,
the sweep put it back to stop the next worker too. So, for this worker's queues:

1. `Transport._deliver` is wrapped: the decoded envelope is checked (worker/jobs/envelope.py)
   before kombu sees it, so a refused message never enters the QoS; headers that would set
   the message's own time limit, eta or expiry are dropped (the worker's limits apply);
2. anything that still raises after kombu took the message rejects it out of the QoS;
3. `_brpop_read` keeps an item that is not even JSON, which fails in kombu's loads before
   any callback, from ending the worker.

A refused message goes on the capped list `nightshift:deadletter:malformed` with its raw
text and the reason (config/store/malformed.py); jobs it names that have a record and have
not ended are failed with that reason, counted in the metrics and toward their batch's end.
Checked against kombu 5.7 and Celery 5.7.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import redis
from kombu.transport import redis as redis_transport

from config import keys as names
from config.errors import ErrorCode
from config.settings import Settings
from config.store import JobStore, redis_client
from config.store import malformed as quarantined
from worker.hooks.report import count_ended
from worker.jobs import envelope
from worker.jobs.envelope import Malformed

logger = logging.getLogger(__name__)

# What kombu's decoding of an item can raise: JSONDecodeError (a ValueError) for text that
# is not JSON, RecursionError for JSON nested too deep, the rest from its __type__ objects.
MALFORMED = (ValueError, TypeError, KeyError, AttributeError, RecursionError)


class Door:
    """Checks, refuses and records the messages that arrive on this worker's queues."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queues = frozenset(settings.queue_list)
        self.client: redis.Redis | None = None

    def _client(self) -> redis.Redis:
        if self.client is None:  # made at first use: install runs before the worker forks
            self.client = redis_client(self.settings)
        return self.client

    def admit(self, raw: object, queue: str) -> bool:
        """True when kombu and Celery may have the message; a refused one is recorded."""
        try:
            message = envelope.check(raw, self.settings)
            self._check_tag(message["properties"]["delivery_tag"])
        except Malformed as exc:
            self.refuse(queue, _dumped(raw), str(exc), exc.code, envelope.named_job_ids(raw))
            return False
        except Exception as exc:  # JSON nested too deep for the checks, and the unforeseen
            reason = f"could not be checked: {type(exc).__name__}: {exc}"
            self.refuse(queue, _dumped(raw), reason, job_ids=envelope.named_job_ids(raw))
            return False
        dropped = envelope.neutralise(message)
        if dropped:
            logger.warning(
                "message %s on %s: ignored its %s header(s); the worker's limits apply",
                message["headers"]["id"],
                queue,
                ", ".join(dropped),
            )
        return True

    def _check_tag(self, tag: str) -> None:
        try:
            held = self._client().hexists(names.KOMBU_UNACKED, tag)
        except redis.RedisError:
            return  # kombu's own append tells: the consumer reconnects if Redis is away
        if held:
            # kombu would overwrite the held message's entry, which the sweep relies on.
            raise Malformed(f"properties.delivery_tag: {tag!r} is held by another message")

    def refuse(
        self,
        queue: str,
        raw: bytes | str,
        reason: str,
        code: ErrorCode = ErrorCode.MALFORMED,
        job_ids: list[str] | None = None,
    ) -> None:
        """Keep the message and its reason, and end the jobs it names that are waiting."""
        ids, reason = job_ids or [], reason[: quarantined.REASON_CHARS]
        logger.error(
            "refused a message on %s (%s): %s; kept in %s",
            queue,
            ", ".join(ids) or "no job id",
            reason,
            names.DEADLETTER_MALFORMED,
        )
        try:
            client = self._client()
            quarantined.quarantine(client, queue, reason, raw, ids)
            store = JobStore(client, self.settings.record_ttl_s)
            why = f"refused by the worker: {reason}"
            for record in quarantined.fail_unfinished(store, ids, why, code):
                count_ended(store, self.settings, record)
        except Exception:  # recording must never stop the consumer; the log keeps the start
            logger.exception("could not record the refused message %r", raw[:200])


def _dumped(raw: object) -> str:
    # kombu's loads may have turned {"__type__": ...} objects into datetimes and the like.
    try:
        return json.dumps(raw, default=str, ensure_ascii=False)
    except (ValueError, RecursionError):
        return f"<not kept: a {type(raw).__name__} nested too deep to write back>"


def _guarded_deliver(deliver: Any, door: Door) -> Any:
    @functools.wraps(deliver)
    def guarded(self: Any, message: Any, queue: str) -> Any:
        if queue not in door.queues:
            return deliver(self, message, queue)  # remote control, events: not jobs
        if not door.admit(message, queue):
            return None
        try:
            return deliver(self, message, queue)
        except self.connection_errors:
            raise  # the consumer reconnects; the message is in `unacked` and comes back
        except Exception as exc:
            _reject(self, message["properties"]["delivery_tag"])
            reason = f"the worker could not take it: {type(exc).__name__}: {exc}"
            door.refuse(queue, _dumped(message), reason, job_ids=envelope.named_job_ids(message))
            return None

    guarded.nightshift_guarded = True  # type: ignore[attr-defined]
    return guarded


def _reject(transport: Any, tag: str) -> None:
    """Take a message out of the QoS it was appended to, without putting it back."""
    for channel in transport.channels:
        qos = channel._qos  # read, not created: only a channel that consumed has one
        if qos is not None and tag in qos._delivered:
            qos.reject(tag, requeue=False)


def _tolerant(read: Any, door: Door) -> Any:
    @functools.wraps(read)
    def brpop_read(self: Any, **options: Any) -> Any:
        try:
            return read(self, **options)
        except MALFORMED as exc:
            # The item was popped and never reached the QoS: keep it as kombu read it (its
            # bytes_to_str decodes with errors="replace": bytes that are not UTF-8 show as
            # U+FFFD). JSONDecodeError carries that text; other errors (kombu's own
            # {"__type__": ...} decoding) only their arguments.
            raw = exc.doc if isinstance(exc, json.JSONDecodeError) else repr(exc.args)
            queues = ",".join(q for q in self.active_queues if q in door.queues) or "?"
            door.refuse(queues, raw, f"not a JSON message: {type(exc).__name__}: {exc}")
            return True

    brpop_read.nightshift_tolerant = True  # type: ignore[attr-defined]
    return brpop_read


def install(app: Any, settings: Settings) -> None:
    door = Door(settings)
    channel, transport = redis_transport.Channel, redis_transport.Transport
    if not getattr(channel._brpop_read, "nightshift_tolerant", False):
        channel._brpop_read = _tolerant(channel._brpop_read, door)  # type: ignore[method-assign]
    if not getattr(transport._deliver, "nightshift_guarded", False):
        transport._deliver = _guarded_deliver(transport._deliver, door)  # type: ignore[method-assign]
