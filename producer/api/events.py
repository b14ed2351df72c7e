"""Server-Sent Events from the event stream (config/store/events.py): one reader, many clients.

One thread, the EventHub, waits on the stream (XREAD BLOCK) for every connected client at
once, so a hundred clients hold one Redis connection, not a hundred; it hands each entry to
every client's queue. A client first reads what it missed by itself (XRANGE from its
Last-Event-ID, up to the stream's end), then takes what the hub hands it, sending each entry
once: ids only grow, so anything at or below the last id sent is a repeat.

Why nothing falls in between: a client subscribes under the hub's lock, which the hub also
holds while it hands entries out and moves its position; the subscription notes that
position, and the hub hands the client every entry after it. The client's own reading starts
before that position (or at it) and runs to the stream's end, which is past it.

Each SSE event's `id:` is the stream entry's id; its `event:` the entry's kind (created,
status, progress, finished, update; `record` for a job's whole record, `gap` when the stream
no longer holds everything since Last-Event-ID); its `data:` one line of JSON (a progress
naming a live preview's step adds `preview_url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import redis
from starlette.concurrency import run_in_threadpool

from config.errors import NightshiftError
from config.store import events
from config.store.events import Event
from config.store.jobs import JobStore
from producer.api.errors import unreachable
from producer.api.views import job_link, job_view

logger = logging.getLogger("nightshift.api")

BLOCK_MS = 1000  # the hub's XREAD wait: how soon it notices it should stop
READ_COUNT = 500
# Entries a client may have waiting before it is cut off: a client that cannot keep up
# reconnects with its Last-Event-ID and reads on from the stream, at its own pace.
BACKLOG = 10_000
KEEPALIVE_S = 15.0  # a comment line this often, so proxies keep an idle stream open
RETRY_MS = 2000  # what EventSource waits before it reconnects
REDIS_RETRY_S = 1.0


class Subscription:
    """One client's queue; entries are put on it from the hub's thread, on the client's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.position = events.START  # the hub's, when this subscribed: it sends what follows
        self.cut = False

    def hand(self, event: Event) -> None:
        """Called in the hub's thread."""
        self.loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: Event) -> None:
        if self.cut:
            return
        if self.queue.qsize() >= BACKLOG:
            self.cut = True
            self.queue.put_nowait(None)  # the client's stream ends; it reconnects
            return
        self.queue.put_nowait(event)


class EventHub:
    """Reads new entries once for every subscriber; started by the first one."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()
        self._position: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, sub: Subscription) -> str:
        """Add a subscriber; returns the position after which the hub hands it every entry.
        Blocking (the first call reads the stream's end): call it from a worker thread."""
        with self._lock:
            if self._position is None:
                self._position = events.last_id(self.client)
                self._thread = threading.Thread(target=self._run, name="event-hub", daemon=True)
                self._thread.start()
            sub.position = self._position
            self._subscribers.add(sub)
            return self._position

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * BLOCK_MS / 1000)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                since = self._position or events.START
            try:
                batch = events.read_new(self.client, since, BLOCK_MS, READ_COUNT)
            except (redis.RedisError, OSError) as exc:
                # Redis away: keep the position and try again; clients wait, then go on.
                logger.warning("event stream: %s; retrying", type(exc).__name__)
                self._stop.wait(REDIS_RETRY_S)
                continue
            if batch:
                self._hand_out(batch)

    def _hand_out(self, batch: list[Event]) -> None:
        with self._lock:
            for sub in list(self._subscribers):
                if sub.cut:
                    self._subscribers.discard(sub)
                    continue
                for event in batch:
                    try:
                        sub.hand(event)
                    except RuntimeError:  # its loop closed (the server is stopping)
                        self._subscribers.discard(sub)
                        break
            self._position = batch[-1].id


class Feed:
    """What one client is sent: the entries after `sent`, each once, oldest first."""

    def __init__(self, client: redis.Redis, sub: Subscription, since: str) -> None:
        self.client, self.sub, self.sent = client, sub, since

    def _new(self, event: Event) -> bool:
        if events.parse_id(event.id) <= events.parse_id(self.sent):
            return False
        self.sent = event.id
        return True

    async def history(self) -> AsyncIterator[Event]:
        """The entries after `sent` that the stream holds now (its end is past the hub's
        position at subscription)."""
        while True:
            page = await run_in_threadpool(events.read_range, self.client, self.sent, READ_COUNT)
            for event in page:
                if self._new(event):
                    yield event
            if len(page) < READ_COUNT:
                return

    async def live(self) -> AsyncIterator[Event | None]:
        """The entries the hub hands over; None every KEEPALIVE_S without one. Ends when the
        client was cut off for falling behind."""
        while True:
            try:
                event = await asyncio.wait_for(self.sub.queue.get(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                yield None
                continue
            if event is None:
                return
            if self._new(event):
                yield event


def frame(kind: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """One SSE event. JSON escapes line breaks, so `data` is always one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


KEEPALIVE = ": keep-alive\n\n"


def event_frame(event: Event) -> str:
    """A stream entry as an SSE event. A progress that names a live preview's step
    (`progress.preview`, config/store/previews.py) gets `preview_url`, where to fetch it: the
    picture itself never travels in the stream."""
    data = event.data
    progress = data.get("progress")
    if isinstance(progress, dict) and "preview" in progress and event.job:
        data = data | {"preview_url": f"{job_link(event.job)}/preview"}
    return frame(event.kind, data, event.id)


@contextlib.asynccontextmanager
async def subscribed(hub: EventHub) -> AsyncIterator[Subscription]:
    sub = Subscription(asyncio.get_running_loop())
    try:
        await run_in_threadpool(hub.subscribe, sub)
        yield sub
    finally:
        hub.unsubscribe(sub)


async def _lost(hub: EventHub, since: str) -> bool:
    lost: bool = await run_in_threadpool(events.lost_after, hub.client, since)
    return lost


def _gap(since: str, what: str) -> str:
    message = (
        f"the event stream no longer holds every event after {since} (it keeps about "
        f"{events.MAXLEN}); {what}"
    )
    return frame("gap", {"since": since, "message": message})


async def job_stream(
    hub: EventHub, store: JobStore, job_id: str, resume: str | None
) -> AsyncIterator[str]:
    """One job's events: its record first, then every change until it ends.

    A fresh client's record carries the position it was read at as its id, so a reconnect
    reads on from there; a resumed client's record carries none (its Last-Event-ID stands).
    """
    yield f"retry: {RETRY_MS}\n\n"
    async with subscribed(hub) as sub:
        record = await run_in_threadpool(store.get, job_id)
        yield frame("record", job_view(record), None if resume else sub.position)
        if resume and await _lost(hub, resume):
            yield _gap(resume, "the record event above is the job as it is now")
        feed = Feed(hub.client, sub, resume or sub.position)
        async for event in feed.history():
            if event.job == job_id:
                yield event_frame(event)
                if event.kind == "finished":
                    return
        if record.status.finished:
            return
        quiet_since = time.monotonic()
        async for live in feed.live():
            if live is not None and live.job == job_id:
                yield event_frame(live)
                quiet_since = time.monotonic()
                if live.kind == "finished":
                    return
            elif time.monotonic() - quiet_since >= KEEPALIVE_S:
                yield KEEPALIVE
                quiet_since = time.monotonic()


async def queue_stream(hub: EventHub, resume: str | None) -> AsyncIterator[str]:
    """Every job's events, from now (or from Last-Event-ID) until the client leaves. It opens
    with `open`, carrying the position as its id, so a reconnect misses nothing."""
    yield f"retry: {RETRY_MS}\n\n"
    async with subscribed(hub) as sub:
        since = resume or sub.position
        yield frame("open", {"since": since}, None if resume else sub.position)
        if resume and await _lost(hub, resume):
            yield _gap(resume, "read the jobs you follow again (GET /v1/jobs)")
        feed = Feed(hub.client, sub, since)
        async for event in feed.history():
            yield event_frame(event)
        async for live in feed.live():
            yield KEEPALIVE if live is None else event_frame(live)


async def guarded(stream: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream, ended with an `error` event if Redis goes away (or the job does) midway:
    the status line was sent long ago, and the client reconnects with its Last-Event-ID."""
    try:
        async for chunk in stream:
            yield chunk
    except (redis.ConnectionError, redis.TimeoutError, NightshiftError) as exc:
        translated = exc if isinstance(exc, NightshiftError) else unreachable(exc)
        yield frame("error", {"code": translated.code.value, "message": str(translated)})
